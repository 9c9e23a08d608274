"""HubSpot CRM v3 as the sandbox serves it: objects, search, batch, associations, pipelines, OAuth.

Records are stored exactly as the API returns them (`id`, `properties` of strings, `createdAt`, `updatedAt`,
`archived`, `archivedAt`; deals also keep their `associations`) and listed in ascending numeric id. Deletes
are archives. Every write stamps `lastmodifieddate` (contacts) / `hs_lastmodifieddate` (companies, deals) and
`updatedAt`, which is what an incremental search (`GTE <epoch ms>`) sees.
"""

from integration_sandbox.vendors.hubspot.app import HubSpotApp

__all__ = ["HubSpotApp"]
