"""The words a fake business is made of: company names, people, products, ticket subjects, cities, phones.

The CRM builder draws from these, and the HubSpot emulator draws industries from here when it edits a company.
"""

from __future__ import annotations


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


WORD_A = _words(
    "Amber Apex Arbor Aspen Atlas Aurora Beacon Birch Blue Bold Bright Cedar Cobalt Copper Coral "
    "Crest Crimson Crystal Delta Eagle Echo Ember Emerald Evergreen Falcon Fern Flint Forge Fox "
    "Frost Galaxy Garnet Glacier Golden Granite Harbor Hawk Hazel Horizon Indigo Iron Ivory Jade "
    "Juniper Keystone Lake Lantern Laurel Linden Lunar Maple Marble Meadow Mercury Midnight Nimbus "
    "Noble North Oak Ocean Onyx Orchid Pacific Peak Pine Pioneer Polar Prairie Quartz Quill Raven "
    "Redwood Ridge River Rocky Ruby Sable Sage Sapphire Silver Sky Slate Solar Spruce Stellar Stone "
    "Summit Swift Timber Topaz Trident True Valley Vertex Violet Willow Winter Zenith"
)
WORD_B = _words(
    "Arc Bay Bend Bridge Brook Canyon Cliff Cove Creek Crown Dale Field Fjord Ford Gate Glen Grove "
    "Haven Heights Hill Hollow Island Key Knoll Land Light Line Marsh Mesa Mill Moor Mount Park Pass "
    "Path Point Pond Port Rock Shore Spring Star Stream Vale View Wave Way Wood Works Yard"
)
WORD_C = _words(
    "Analytics Capital Consulting Design Dynamics Energy Engineering Foods Freight Games Health "
    "Insurance Interactive Labs Logic Logistics Manufacturing Media Networks Outfitters Pharma "
    "Realty Robotics Software Solutions Studios Supply Systems Textiles Travel Ventures"
)
SUFFIXES = ("Ltd", "Inc", "LLC", "GmbH", "Group", "Co", "PLC", "SA")
REGIONS = ("Europe", "Americas", "Asia Pacific", "International", "Services", "Holdings")
NAME_SPACE = len(WORD_A) * len(WORD_B) * len(WORD_C)
INDUSTRIES = (  # HubSpot's own industry values
    "COMPUTER_SOFTWARE",
    "INFORMATION_TECHNOLOGY_AND_SERVICES",
    "FINANCIAL_SERVICES",
    "MARKETING_AND_ADVERTISING",
    "LOGISTICS_AND_SUPPLY_CHAIN",
    "HOSPITAL_HEALTH_CARE",
    "RETAIL",
    "CONSTRUCTION",
    "EDUCATION_MANAGEMENT",
    "FOOD_BEVERAGES",
    "MANAGEMENT_CONSULTING",
    "RENEWABLES_ENVIRONMENT",
)
FIRST_NAMES = _words(
    "Aisha Alex Amelia Ana Ben Carlos Chloe Daniel David Elena Emma Ethan Fatima Grace Hannah Hiro "
    "Isabel Jack James Jane John Julia Kai Kenji Laura Leo Liam Lucas Maria Mark Maya Mei Mia "
    "Michael Nadia Noah Olivia Omar Paul Priya Rachel Ravi Rosa Ryan Sam Sara Sofia Tom Uma Victor "
    "Wei Yusuf Zara Zoe"
)
LAST_NAMES = _words(
    "Adams Ahmed Baker Brown Chen Clark Cohen Costa Davies Diaz Evans Fischer Garcia Green Hall "
    "Harris Hughes Ito Jackson Johnson Jones Kim Kowalski Lee Lewis Lopez Martin Meyer Miller Moore "
    "Muller Nakamura Nguyen Novak Patel Perez Price Reed Rossi Sato Schmidt Scott Silva Singh Smith "
    "Taylor Thomas Turner Walker Wang White Wilson Wright Young"
)
AGENT_FIRST_NAMES = _words("Alice Bruno Cara Dev Eva Felix Gina Hugo Ines Jonas Kira Luis Mona Nils Orla Pia Quinn Rui")
AGENT_LAST_NAMES = _words("Abbott Berg Castro Dunn Eriksen Ford Gray Holt Ibsen Jensen Kerr Lund Marsh Nash Ortiz Park")
ACCOUNT_OWNERS = (
    "Hannah Okafor",
    "Marcus Lindqvist",
    "Priya Raman",
    "Tom Fletcher",
    "Yuki Tanaka",
    "Sofia Marino",
)
PRODUCTS = (
    "Annual licence",
    "Platform subscription",
    "Onboarding package",
    "Enterprise plan",
    "Support renewal",
    "Expansion seats",
    "Data migration",
    "Pilot project",
    "Training workshop",
    "Premium add-on",
)
TICKET_SUBJECTS = (
    "Cannot log in to the dashboard",
    "Invoice shows the wrong address",
    "Export to CSV times out",
    "Request to add {n} more seats",
    "Question about our {p}",
    "Password reset email never arrives",
    "API returns 500 on large uploads",
    "How do we change the billing contact?",
    "Report numbers differ from last week",
    "Feature request: dark mode",
    "Integration sync stopped overnight",
    "Please cancel the duplicate charge",
    "SSO setup for our team",
    "Slow page loads since the last update",
)
TICKET_TYPES = ("problem", "incident", "question", "task")
PRIORITIES = ("urgent", "high", "normal", "normal", "low")
TICKET_STATUSES = ("new", "open", "open", "pending", "hold", "solved", "solved", "closed", "closed")
OPEN_STAGES = (
    "appointmentscheduled",
    "qualifiedtobuy",
    "presentationscheduled",
    "decisionmakerboughtin",
    "contractsent",
)
LIFECYCLE_PROSPECT = ("subscriber", "lead", "marketingqualifiedlead", "salesqualifiedlead")
LIFECYCLE_OPEN = ("salesqualifiedlead", "opportunity", "opportunity")
LIFECYCLE_CUSTOMER = ("customer", "customer", "customer", "evangelist")
EMAIL_PATTERNS = ("{f}.{l}", "{f}.{l}", "{f}", "{f}_{l}")
ALNUM = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

# City and a phone template in a range reserved for fiction that `phonenumbers` validates; each `d` is a
# random digit.
CITIES = (
    ("London", "+44 20 7946 0ddd"),
    ("Manchester", "+44 161 496 0ddd"),
    ("Birmingham", "+44 121 496 0ddd"),
    ("Bristol", "+44 117 496 0ddd"),
    ("Leeds", "+44 113 496 0ddd"),
    ("Edinburgh", "+44 131 496 0ddd"),
    ("New York", "+1 212 555 01dd"),
    ("San Francisco", "+1 415 555 01dd"),
    ("Chicago", "+1 312 555 01dd"),
    ("Boston", "+1 617 555 01dd"),
    ("Austin", "+1 512 555 01dd"),
    ("Seattle", "+1 206 555 01dd"),
    ("Denver", "+1 303 555 01dd"),
    ("Sydney", "+61 2 5550 dddd"),
    ("Melbourne", "+61 3 7010 dddd"),
    ("Brisbane", "+61 7 5550 dddd"),
    ("Paris", "+33 1 99 00 dd dd"),
    ("Lyon", "+33 4 99 00 dd dd"),
)
PHONE_FORMATS = tuple((city, tpl.replace("d", "{}"), tpl.count("d")) for city, tpl in CITIES)

CURRENCIES = (("USD", 0.45), ("EUR", 0.65), ("GBP", 0.90), ("JPY", 1.0))  # cumulative weights
BAD_PHONES = ("call me maybe", "12", "+44", "ask reception")
