"""Zendesk Support, imitated: tickets, users and organizations under `/api/v2`, as zenpy sees them.

What the real API does and this one copies (shared/reference/vendor-apis.md §3):

- every path works with and without a `.json` suffix;
- lists page by cursor (`page[size]` ≤ 100, opaque `page[after]`/`page[before]`, absolute `links`) or
  by offset (`page`, `per_page`, refused past the first 10,000 records), in ascending id; deleted tickets,
  deleted (inactive) users and deleted organizations are not listed;
- a deleted organization is a tombstone: 404 on show, but in the incremental export with `deleted_at`;
- incremental exports are ordered by `generated_timestamp`, leave out changes younger than
  `incremental_lag_s`, keep their cursor valid after `end_of_stream`, and are for admins only;
- writes keep `updated_at` and `generated_timestamp` current, refuse stale `safe_update`s with 409, and ticket
  creation honours `Idempotency-Key`.

Within one `generated_timestamp` second, the export orders records by write sequence (the dataset's records by
id), so a record written in the same second as a cursor is never skipped.
"""

from integration_sandbox.vendors.zendesk.app import ZendeskApp

__all__ = ["ZendeskApp"]
