# A variant of wazo-testphone (its common.py and templates are copied beside this file by
# tests/wazo/conftest.py): the plugin writes and serves its files in var/tftpboot/phones over
# HTTP, as some published plugins serve a folder of their own, and nothing over TFTP.

import os

try:
    from wazo_provd.servers.http import HTTPNoListingFileService
    from wazo_provd.servers.tftp.service import TFTPNullService
except ImportError:
    from provd.servers.http import HTTPNoListingFileService
    from provd.servers.tftp.service import TFTPNullService

common_globals = {}
execfile_("common.py", common_globals)  # noqa: F821 - injected by the loader

MODELS = {"TW100": "1.2.3", "TW200": "1.2.3"}


class TestSplitWazoPlugin(common_globals["BaseTestWazoPlugin"]):
    IS_PLUGIN = True

    pg_associator = common_globals["TestWazoPgAssociator"](MODELS)

    def __init__(self, app, plugin_dir, gen_cfg, spec_cfg):
        super().__init__(app, plugin_dir, gen_cfg, spec_cfg)
        self._tftpboot_dir = os.path.join(self._tftpboot_dir, "phones")
        os.makedirs(self._tftpboot_dir, exist_ok=True)
        self.http_service = HTTPNoListingFileService(self._tftpboot_dir)
        self.tftp_service = TFTPNullService(errmsg="this plugin serves nothing over TFTP")
