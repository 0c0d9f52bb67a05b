import pytest
from crmlink_pipedrive import FIXTURES, PipedriveAPIError, PipedriveConnector

from crmlink import AuthError, RetriableError
from crmlink.testing.conformance import ConnectorContract, SuiteConfig


class TestPipedrive(ConnectorContract):
    connector = PipedriveConnector
    config = {"path": str(FIXTURES), "api_token": "test-token"}
    suite = SuiteConfig(expected_deleted={"persons": {"23"}, "deals": {"204"}})
    errors = (
        (PipedriveAPIError(429, "Too Many Requests", retry_after=2), RetriableError),
        (PipedriveAPIError(503, "Service Unavailable"), RetriableError),
        (PipedriveAPIError(401, "unauthorized"), AuthError),
    )


def test_planned_activities_are_not_interactions():
    connector = PipedriveConnector({})
    activities = next(s for s in connector.streams() if s.name == "activities")
    assert all(r.occurred_at.year == 2026 and r.occurred_at.month <= 11 for r in activities.records(None))


@pytest.mark.parametrize("stream", ["organizations", "persons"])
def test_custom_fields_are_read(stream):
    connector = PipedriveConnector({})
    records = list(next(s for s in connector.streams() if s.name == stream).records(None))
    field = "tier" if stream == "organizations" else "stance"
    assert any(getattr(r, field) is not None for r in records)
