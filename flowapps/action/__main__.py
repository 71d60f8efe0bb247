"""``python -m flowapps.action train|test|fuse|report`` (same as ``flownet2 action``)."""

import sys

from flowapps.action.commands import main

sys.exit(main())
