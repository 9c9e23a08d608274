"""HubSpot CRM: the system of record for companies, contacts and deals."""
