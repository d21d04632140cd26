"""Label Studio integration: a local server, task/annotation sync, pre-annotation and
an ML backend, all built on the project's own readers and `predict()`.

    python -m training.studio serve                      # local Label Studio on 127.0.0.1
    python -m training.studio push                       # labeling config + tasks -> project
    python -m training.studio pull                       # project annotations -> JSON export
    python -m training.studio preannotate --model DIR    # predict() -> Label Studio predictions
    python -m training.studio backend --model DIR        # ML backend (/health /setup /predict /webhook)
    python -m training.studio connect --backend-url URL  # attach that backend to the project
    python -m training.studio versions --models DIR      # the backend's model versions; rollback --to V
    python -m training.studio agreement EXPORT           # span agreement between annotators
    python -m training.studio review --project P         # disagreements -> a review project

Everything here needs the `studio` extra (label-studio, label-studio-sdk); the backend
needs Flask. `training.inference` never imports this package: the dependency goes one
way only (studio -> inference).
"""

from .errors import StudioError

__all__ = ["StudioError"]
