"""The packaged configuration: the default YAML files, installed with the code.

An operator does not edit these: a file of the same name in the folder `INTEGRATION_CONFIG_DIR` names wins
over the one here, file by file (`integration_assets.core.config.config_path`).
"""
