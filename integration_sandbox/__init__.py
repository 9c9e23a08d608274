"""A local imitation of HubSpot, Stripe and Zendesk: seeded datasets with planted defects, served over HTTP.

It stands nearly alone: of the integration it imitates vendors for, it uses only the YAML loader whose errors
name file, line and entry (`integration_assets.core.config`). `generator` writes a dataset;
`kit` is what a vendor emulator is built from and `vendors/` holds the three; `server` serves them with a fault
profile (`faults`) applied; `cli` is the `integration-sandbox` command; `clients` talk to it over plain HTTP.
"""
