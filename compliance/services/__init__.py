"""Every compliance state change, and the send gate check_message (R-CMP-1..9).

One module per concern; this package re-exports them all, so `from compliance.services import X`
and `from compliance import services; services.X` keep working:

- reviews: signatures, templates, protected brands, link domains, review and revocation (R-CMP-1, R-CMP-2)
- content: banned-content rules and the cached scanner (R-CMP-3)
- gate: check_message and the volume counters (R-CMP-1..9)
- optouts: opt-outs, reply keywords and their review list, the block list, consent (R-CMP-4, R-CMP-5)
- enforcement: violations, the enforcement ladder, rectification, complaints (R-CMP-6, R-CMP-7)
- countries: per-country rules and registered senders (R-CMP-9)
- options: per-tenant compliance settings

Each customer write and operator action is recorded with tenants.services.record_operation (R-AUD-3).
Tenant-schema rows (opt-outs, consents) are touched inside tenant_context(tenant).
"""

from ._base import *  # noqa: F403
from ._base import _now, _number  # noqa: F401
from .content import *  # noqa: F403
from .countries import *  # noqa: F403
from .enforcement import *  # noqa: F403
from .gate import *  # noqa: F403
from .options import *  # noqa: F403
from .optouts import *  # noqa: F403
from .reviews import *  # noqa: F403
from .sendtime import *  # noqa: F403
