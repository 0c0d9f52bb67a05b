"""Object and field definitions of the emulated org (standard objects + custom fields).

Fields are declared in a compact notation: ``"Name:type[(arg)][>Relationship][!][~]"``

* ``type`` is a Salesforce describe type (string, picklist, reference, datetime, ...);
  ``picklist(A|B|C)`` lists values, ``reference(Account|Lead)`` lists target objects.
* ``>Rel`` names the relationship of a reference field (``ParentId:reference(Account)>Parent``).
* ``!`` means not nillable; ``~`` means read-only (neither createable nor updateable).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .values import SOAP_TYPES

_SPEC = re.compile(r"^(\w+):(\w+)(?:\(([^)]*)\))?(?:>(\w+))?(!?)(~?)$")


@dataclass
class FieldDef:
    name: str
    type: str
    label: str
    custom: bool = False
    nillable: bool = True
    createable: bool = True
    updateable: bool = True
    reference_to: list[str] = field(default_factory=list)
    relationship_name: str | None = None
    picklist: list[str] = field(default_factory=list)

    def describe(self) -> dict[str, object]:
        """The field entry of ``sobjects/X/describe``."""
        length = {"string": 255, "textarea": 32000, "picklist": 255, "email": 80,
                  "phone": 40, "url": 255, "id": 18, "reference": 18}.get(self.type, 0)
        return {
            "name": self.name, "label": self.label, "type": self.type,
            "soapType": SOAP_TYPES.get(self.type, "xsd:string"), "length": length,
            "byteLength": length * 3, "custom": self.custom, "nillable": self.nillable,
            "createable": self.createable, "updateable": self.updateable,
            "filterable": True, "sortable": self.type != "textarea", "groupable": True,
            "calculated": False, "externalId": False, "unique": False, "idLookup": self.name == "Id",
            "defaultedOnCreate": not self.createable or self.type == "boolean",
            "nameField": self.name == "Name",
            "precision": 18 if self.type in ("currency", "double", "percent") else 0,
            "scale": 2 if self.type in ("currency", "double", "percent") else 0,
            "digits": 9 if self.type == "int" else 0,
            "referenceTo": list(self.reference_to), "relationshipName": self.relationship_name,
            "polymorphicForeignKey": len(self.reference_to) > 1,
            "restrictedPicklist": False,
            "picklistValues": [
                {"value": v, "label": v, "active": True, "defaultValue": False, "validFor": None}
                for v in self.picklist
            ],
        }


@dataclass
class ObjectDef:
    name: str
    key_prefix: str
    label_plural: str
    fields: dict[str, FieldDef]
    custom: bool = False

    def field(self, name: str) -> FieldDef | None:
        """Case-insensitive field lookup (SOQL and the REST API ignore field-name case)."""
        return self.fields.get(name) or self._lower().get(name.lower())

    def relationship(self, name: str) -> FieldDef | None:
        low = name.lower()
        for f in self.fields.values():
            if f.relationship_name and f.relationship_name.lower() == low:
                return f
        return None

    def _lower(self) -> dict[str, FieldDef]:
        return {k.lower(): v for k, v in self.fields.items()}


def label_of(name: str) -> str:
    base = name[:-3] if name.endswith("__c") else name
    base = base[:-2] if base.endswith("Id") and len(base) > 2 else base
    return re.sub(r"(?<=[a-z])(?=[A-Z])", " ", base).replace("_", " ")


def parse_field(spec: str, custom: bool = False) -> FieldDef:
    m = _SPEC.match(spec)
    if not m:
        raise ValueError(f"bad field spec {spec!r}")
    name, ftype, arg, rel, notnull, readonly = m.groups()
    values = arg.split("|") if arg else []
    return FieldDef(
        name=name, type=ftype, label=label_of(name), custom=custom or name.endswith("__c"),
        nillable=not notnull, createable=not readonly, updateable=not readonly,
        reference_to=values if ftype == "reference" else [],
        relationship_name=rel, picklist=values if ftype in ("picklist", "multipicklist") else [],
    )


SYSTEM_FIELDS = [
    "Id:id!~", "IsDeleted:boolean!~", "CreatedDate:datetime!~",
    "CreatedById:reference(User)>CreatedBy!~", "LastModifiedDate:datetime!~",
    "LastModifiedById:reference(User)>LastModifiedBy!~", "SystemModstamp:datetime!~",
]
OWNER = "OwnerId:reference(User)>Owner!"
SOURCES = "Web|Phone Inquiry|Partner Referral|Purchased List|Other"
INDUSTRIES = (
    "Agriculture|Apparel|Banking|Biotechnology|Chemicals|Communications|Construction|Consulting|"
    "Education|Electronics|Energy|Engineering|Entertainment|Environmental|Finance|"
    "Food & Beverage|Government|Healthcare|Hospitality|Insurance|Machinery|Manufacturing|Media|"
    "Not For Profit|Recreation|Retail|Shipping|Technology|Telecommunications|Transportation|"
    "Utilities|Other"
)
ADDRESS = ["{p}Street:textarea", "{p}City:string", "{p}State:string", "{p}PostalCode:string",
           "{p}Country:string"]
STAGES = ("Prospecting|Qualification|Needs Analysis|Value Proposition|Id. Decision Makers|"
          "Perception Analysis|Proposal/Price Quote|Negotiation/Review|Closed Won|Closed Lost")
ACTIVITY_COMMON = [
    OWNER, "Subject:string", "Description:textarea", "ActivityDate:date",
    "WhoId:reference(Contact|Lead)>Who", "WhatId:reference(Account|Opportunity|Contract|Order|Case|Campaign)>What",
    "AccountId:reference(Account)>Account~", "IsArchived:boolean~",
    "Type:picklist(Call|Email|Meeting|Other)",
]


def _addr(prefix: str) -> list[str]:
    return [a.format(p=prefix) for a in ADDRESS]


STANDARD: dict[str, tuple[str, str, list[str]]] = {
    "Account": ("001", "Accounts", [
        "Name:string!", "Type:picklist(Prospect|Customer - Direct|Customer - Channel|"
        "Channel Partner / Reseller|Installation Partner|Technology Partner|Other)",
        "ParentId:reference(Account)>Parent", f"Industry:picklist({INDUSTRIES})",
        "AnnualRevenue:currency", "NumberOfEmployees:int", "Website:url", "Phone:phone",
        "Fax:phone", "AccountNumber:string", "Site:string", "Rating:picklist(Hot|Warm|Cold)",
        *_addr("Billing"), *_addr("Shipping"), "Description:textarea", OWNER,
        f"AccountSource:picklist({SOURCES})", "LastActivityDate:date~",
    ]),
    "Contact": ("003", "Contacts", [
        "AccountId:reference(Account)>Account", "FirstName:string", "LastName:string!",
        "Name:string~", "Salutation:picklist(Mr.|Ms.|Mrs.|Dr.|Prof.)", "Title:string",
        "Department:string", "Email:email", "Phone:phone", "MobilePhone:phone", "Birthdate:date",
        f"LeadSource:picklist({SOURCES})", *_addr("Mailing"),
        "ReportsToId:reference(Contact)>ReportsTo", OWNER, "HasOptedOutOfEmail:boolean",
        "DoNotCall:boolean", "Description:textarea", "LastActivityDate:date~",
    ]),
    "Lead": ("00Q", "Leads", [
        "FirstName:string", "LastName:string!", "Name:string~", "Company:string!",
        "Title:string", "Email:email", "Phone:phone", "MobilePhone:phone",
        "Status:picklist(Open - Not Contacted|Working - Contacted|Closed - Converted|"
        "Closed - Not Converted)!", f"LeadSource:picklist({SOURCES})",
        f"Industry:picklist({INDUSTRIES})", "Rating:picklist(Hot|Warm|Cold)",
        "NumberOfEmployees:int", "AnnualRevenue:currency", "Website:url", *_addr(""),
        "IsConverted:boolean!", "ConvertedAccountId:reference(Account)>ConvertedAccount~",
        "ConvertedContactId:reference(Contact)>ConvertedContact~",
        "ConvertedOpportunityId:reference(Opportunity)>ConvertedOpportunity~",
        "ConvertedDate:date~", OWNER, "Description:textarea",
    ]),
    "User": ("005", "Users", [
        "Username:string!", "Email:email!", "FirstName:string", "LastName:string!",
        "Name:string~", "Alias:string", "IsActive:boolean!", "ProfileId:reference(Profile)>Profile",
        "UserRoleId:reference(UserRole)>UserRole", "Title:string", "Department:string",
        "CompanyName:string", "ManagerId:reference(User)>Manager", "TimeZoneSidKey:string",
        "UserType:picklist(Standard|PowerPartner|CsnOnly|Guest)~",
    ]),
    "UserRole": ("00E", "Roles", ["Name:string!", "ParentRoleId:reference(UserRole)>ParentRole",
                                  "DeveloperName:string"]),
    "Profile": ("00e", "Profiles", ["Name:string!", "UserType:string~"]),
    "Opportunity": ("006", "Opportunities", [
        "AccountId:reference(Account)>Account", "Name:string!", f"StageName:picklist({STAGES})!",
        "Amount:currency", "Probability:percent", "ExpectedRevenue:currency~", "CloseDate:date!",
        "Type:picklist(Existing Customer - Upgrade|Existing Customer - Replacement|"
        "Existing Customer - Downgrade|New Customer)", f"LeadSource:picklist({SOURCES})",
        "IsClosed:boolean!~", "IsWon:boolean!~",
        "ForecastCategory:picklist(Omitted|Pipeline|BestCase|MostLikely|Forecast|Closed)!~",
        "ForecastCategoryName:picklist(Omitted|Pipeline|Best Case|Commit|Closed)",
        "CampaignId:reference(Campaign)>Campaign", OWNER, "NextStep:string",
        "Description:textarea", "FiscalYear:int~", "FiscalQuarter:int~",
        "HasOpportunityLineItem:boolean!~", "ContactId:reference(Contact)>Contact",
        "ContractId:reference(Contract)>Contract",
    ]),
    "OpportunityContactRole": ("00K", "Contact Roles", [
        "OpportunityId:reference(Opportunity)>Opportunity!", "ContactId:reference(Contact)>Contact!",
        "Role:picklist(Business User|Decision Maker|Economic Buyer|Economic Decision Maker|"
        "Evaluator|Executive Sponsor|Influencer|Technical Buyer|Other)", "IsPrimary:boolean!",
    ]),
    "OpportunityHistory": ("008", "Opportunity History", [
        "OpportunityId:reference(Opportunity)>Opportunity!~", f"StageName:picklist({STAGES})!~",
        "Amount:currency~", "ExpectedRevenue:currency~", "CloseDate:date~", "Probability:percent~",
        "ForecastCategory:picklist(Omitted|Pipeline|BestCase|MostLikely|Forecast|Closed)~",
        "PrevAmount:currency~", "PrevCloseDate:date~",
    ]),
    "OpportunityStage": ("01J", "Opportunity Stages", [
        "MasterLabel:string!", "ApiName:string!", "SortOrder:int", "DefaultProbability:percent",
        "ForecastCategory:picklist(Omitted|Pipeline|BestCase|MostLikely|Forecast|Closed)",
        "ForecastCategoryName:string", "IsClosed:boolean!", "IsWon:boolean!", "IsActive:boolean!",
        "Description:string",
    ]),
    "Task": ("00T", "Tasks", [
        *ACTIVITY_COMMON, "Status:picklist(Not Started|In Progress|Completed|"
        "Waiting on someone else|Deferred)!", "Priority:picklist(High|Normal|Low)!",
        "IsClosed:boolean!~", "TaskSubtype:picklist(Task|Email|ListEmail|Cadence|Call|LinkedIn)",
        "CallType:picklist(Internal|Inbound|Outbound)", "CallDurationInSeconds:int",
        "CallDisposition:string", "CompletedDateTime:datetime~", "IsHighPriority:boolean~",
    ]),
    "Event": ("00U", "Events", [
        *ACTIVITY_COMMON, "StartDateTime:datetime", "EndDateTime:datetime",
        "ActivityDateTime:datetime", "DurationInMinutes:int", "IsAllDayEvent:boolean!",
        "Location:string", "ShowAs:picklist(Busy|OutOfOffice|Free)", "EventSubtype:picklist(Event)",
    ]),
    "TaskRelation": ("0RT", "Task Relations", [
        "TaskId:reference(Task)>Task!", "RelationId:reference(Contact|Lead|User|Account|Opportunity)>Relation!",
        "IsWhat:boolean!", "AccountId:reference(Account)>Account~",
    ]),
    "EventRelation": ("0RE", "Event Relations", [
        "EventId:reference(Event)>Event!", "RelationId:reference(Contact|Lead|User|Account|Opportunity)>Relation!",
        "IsWhat:boolean!", "IsParent:boolean!", "IsInvitee:boolean!",
        "Status:picklist(New|Accepted|Declined|Uninvited)", "RespondedDate:datetime",
        "Response:string", "AccountId:reference(Account)>Account~",
    ]),
    "Contract": ("800", "Contracts", [
        "AccountId:reference(Account)>Account!", "Status:picklist(Draft|In Approval Process|Activated)!",
        "StatusCode:picklist(Draft|InApproval|Activated|Terminated|Expired)~", "StartDate:date",
        "EndDate:date~", "ContractTerm:int", "ContractNumber:string~", OWNER,
        "ActivatedDate:datetime", "Description:textarea",
    ]),
    "Order": ("801", "Orders", [
        "AccountId:reference(Account)>Account", "ContractId:reference(Contract)>Contract",
        "OpportunityId:reference(Opportunity)>Opportunity", "Status:picklist(Draft|Activated)!",
        "StatusCode:picklist(Draft|Activated|Cancelled|Expired)~", "EffectiveDate:date!",
        "EndDate:date", "TotalAmount:currency~", "OrderNumber:string~",
        "Type:string", OWNER, "Description:textarea",
    ]),
    "Campaign": ("701", "Campaigns", [
        "Name:string!", "Type:picklist(Conference|Webinar|Trade Show|Public Relations|Partners|"
        "Referral Program|Advertisement|Banner Ads|Direct Mail|Email|Telemarketing|Other)",
        "Status:picklist(Planned|In Progress|Completed|Aborted)", "StartDate:date", "EndDate:date",
        "BudgetedCost:currency", "ActualCost:currency", "IsActive:boolean!", OWNER,
        "ParentId:reference(Campaign)>Parent", "Description:textarea",
    ]),
    "Case": ("500", "Cases", [
        "CaseNumber:string~", "AccountId:reference(Account)>Account",
        "ContactId:reference(Contact)>Contact", "Subject:string", "Description:textarea",
        "Status:picklist(New|Working|Escalated|Closed)!", "Origin:picklist(Phone|Email|Web)",
        "Priority:picklist(High|Medium|Low)", "Type:picklist(Mechanical|Electrical|"
        "Electronic|Structural|Problem|Feature Request|Question|Complaint|Other)",
        "Reason:picklist(Installation|Equipment Complexity|"
        "Performance|Breakdown|Equipment Design|Feedback|Other)", "IsClosed:boolean!~", OWNER,
        "IsEscalated:boolean", "ClosedDate:datetime~",
    ]),
    "OpportunityCompetitor": ("00J", "Opportunity Competitors", [
        "OpportunityId:reference(Opportunity)>Opportunity!", "CompetitorName:string",
        "Strengths:string", "Weaknesses:string",
    ]),
}

LABELS = {"OpportunityContactRole": "Opportunity Contact Role", "UserRole": "Role"}


def build_objects() -> dict[str, ObjectDef]:
    """Fresh (mutable) definitions of all standard objects."""
    objects = {}
    for name, (prefix, plural, specs) in STANDARD.items():
        objects[name] = make_object(name, prefix, plural, specs)
    return objects


def make_object(name: str, prefix: str, plural: str, specs: list[str],
                custom: bool = False) -> ObjectDef:
    fields = {}
    for spec in SYSTEM_FIELDS + specs:
        f = parse_field(spec)
        fields[f.name] = f
    return ObjectDef(name=name, key_prefix=prefix, label_plural=plural, fields=fields,
                     custom=custom)


# (label, probability, forecast category, forecast category name, closed, won)
OPPORTUNITY_STAGES: list[tuple[str, int, str, str, bool, bool]] = [
    ("Prospecting", 10, "Pipeline", "Pipeline", False, False),
    ("Qualification", 10, "Pipeline", "Pipeline", False, False),
    ("Needs Analysis", 20, "Pipeline", "Pipeline", False, False),
    ("Value Proposition", 50, "Pipeline", "Pipeline", False, False),
    ("Id. Decision Makers", 60, "Pipeline", "Pipeline", False, False),
    ("Perception Analysis", 70, "Pipeline", "Pipeline", False, False),
    ("Proposal/Price Quote", 75, "Pipeline", "Pipeline", False, False),
    ("Negotiation/Review", 90, "Pipeline", "Pipeline", False, False),
    ("Closed Won", 100, "Closed", "Closed", True, True),
    ("Closed Lost", 0, "Omitted", "Omitted", True, False),
]
