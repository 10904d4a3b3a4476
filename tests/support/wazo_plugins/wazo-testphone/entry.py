# The entry file of a wazo-format plugin: it pulls its shared code in with execfile_, as the
# published plugins do, and defines the one class with IS_PLUGIN.

common_globals = {}
execfile_("common.py", common_globals)  # noqa: F821 - injected by the loader

MODELS = {"TW100": "1.2.3", "TW200": "1.2.3"}


class TestWazoPlugin(common_globals["BaseTestWazoPlugin"]):
    IS_PLUGIN = True

    pg_associator = common_globals["TestWazoPgAssociator"](MODELS)
