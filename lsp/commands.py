"""The ``workspace/executeCommand`` commands ``prefloop lsp`` provides.

* ``prefloop.accept``: attached to every inline completion item; arguments: suggestion
  id, candidate index, the inserted text. Editors run it after inserting the item.
* ``prefloop.dismiss``: Escape while a suggestion is shown; optional argument: the
  document URI or the suggestion id.
* ``prefloop.toggle``: turn suggestions off or on; optional argument ``true``/``false``.
* ``prefloop.retrain``: ask the service to retrain (``POST /admin/retrain``).
* ``prefloop.status``: connection state, model version, today's acceptance, spooled events.
"""

from __future__ import annotations

ACCEPT = "prefloop.accept"
DISMISS = "prefloop.dismiss"
TOGGLE = "prefloop.toggle"
RETRAIN = "prefloop.retrain"
STATUS = "prefloop.status"
COMMANDS = (ACCEPT, DISMISS, TOGGLE, RETRAIN, STATUS)
