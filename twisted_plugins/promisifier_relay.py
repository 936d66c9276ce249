"""The twistd plugin: `twistd -n promisifier-relay [options]`.

Installed as twisted/plugins/promisifier_relay.py (see setup.py). twistd imports every plugin
module to list them, so this one imports nothing heavy: the options and the service are
imported only when the plugin is used.
"""

from twisted.application.service import IServiceMaker
from twisted.plugin import IPlugin
from zope.interface import implementer


@implementer(IServiceMaker, IPlugin)
class _RelayServiceMaker:
    tapname = "promisifier-relay"
    description = "WAMP v2 relay (router) over WebSocket: RPC and publish/subscribe."

    @property
    def options(self):
        from promisifier.relay.command_line import RelayOptions

        return RelayOptions

    def makeService(self, options):
        from promisifier.relay.service import make_service

        return make_service(options)


serviceMaker = _RelayServiceMaker()
