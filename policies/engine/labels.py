"""Which labels select a workload's pods, stably (design §4): the one rule, for scopes and peers alike.

Controllers stamp labels on the pods they make that identify one revision, one pod or one run
(``pod-template-hash``, ``controller-uid``, ``job-name``, ...). A selector built from them stops matching
at the next rollout, or matches a single run, so a workload is selected by:

1. its controller's own selector, when that is made of user labels only (a Deployment's, usually);
2. else the labels its pods carry (its pod template's, or for a bare Pod or an owner missing from the
   inventory, the labels its pods share), minus the controller-made ones: a Job made by ``kubectl create
   job`` or a Helm hook has only ``controller-uid`` in its selector, but its template carries ``app``;
   Labels that are not valid Kubernetes labels (a hand-made dump may hold any text) are never used either.
3. else, for a Job on its own (never a CronJob's run: those roll up to the CronJob), its
   ``batch.kubernetes.io/job-name`` (or legacy ``job-name``), which stays the same when the Job is made
   again under the same name;
4. else nothing: the workload has no usable label.

A Service is selected by its own selector, as written: that is exactly the set of pods it sends to.
"""

from __future__ import annotations

from collections.abc import Mapping

from policies.engine.model import LabelSelector
from policies.engine.selectors import label_key_problem, label_value_problem

CONTROLLER_LABELS: frozenset[str] = frozenset(
    {
        "pod-template-hash",
        "controller-revision-hash",
        "pod-template-generation",
        "statefulset.kubernetes.io/pod-name",
        "apps.kubernetes.io/pod-index",
        "job-name",
        "controller-uid",
        "batch.kubernetes.io/job-name",
        "batch.kubernetes.io/controller-uid",
        "batch.kubernetes.io/job-completion-index",
    }
)
# The labels naming a Job, newest first (Kubernetes 1.27 added the prefixed one and kept the old).
JOB_NAME_LABELS: tuple[str, ...] = ("batch.kubernetes.io/job-name", "job-name")


def usable(key: str, value: str) -> bool:
    """A label a selector may use: not controller-made, and valid as Kubernetes writes labels (what the API
    server never stored cannot be selected, and a policy naming it would be refused)."""
    return key not in CONTROLLER_LABELS and label_key_problem(key) is None and label_value_problem(value) is None


def is_user_selector(selector: LabelSelector) -> bool:
    """A non-empty selector made only of usable labels."""
    pairs = [*selector.match_labels, *((req.key, v) for req in selector.match_expressions for v in req.values or ("",))]
    return bool(pairs) and all(usable(key, value) for key, value in pairs)


def stable_selector(
    kind: str, name: str, own_selector: LabelSelector | None, pod_labels: Mapping[str, str]
) -> LabelSelector:
    """The selector of a workload's pods by the rule above; empty when it has no usable label.

    ``own_selector`` is the controller's ``spec.selector`` (a Service's selector for a Service), None when
    it has none (a CronJob, a bare Pod, an owner missing from the inventory); ``pod_labels`` the labels
    its pods carry.
    """
    if kind == "Service":
        return own_selector or LabelSelector()
    if own_selector is not None and is_user_selector(own_selector):
        return own_selector
    user = {key: value for key, value in pod_labels.items() if usable(key, value)}
    if user:
        return LabelSelector(match_labels=tuple(sorted(user.items())))
    if kind == "Job":
        for key in JOB_NAME_LABELS:
            if pod_labels.get(key) == name:
                return LabelSelector(match_labels=((key, name),))
    return LabelSelector()


def no_selector_reason(kind: str, pod_labels: Mapping[str, str], own_selector: LabelSelector | None) -> str:
    """Why ``stable_selector`` found nothing, in words for the user."""
    if kind == "Service":
        return "it has no selector"
    keys = set(pod_labels)
    if own_selector is not None:
        keys |= {key for key, _ in own_selector.match_labels} | {req.key for req in own_selector.match_expressions}
    if keys and all(key in CONTROLLER_LABELS for key in keys):
        return f"only controller-made labels: {', '.join(sorted(keys))}"
    if keys:
        return f"only labels a selector cannot use, controller-made or not valid: {', '.join(sorted(keys))}"
    if kind == "CronJob":
        return ("its job template has no labels: its runs' pods carry only controller-made labels (job-name, "
                "controller-uid), which name a single run")
    return "its pods have no labels"
