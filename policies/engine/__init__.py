"""netsec's policy engine: pure Python (no Django), dataclasses in, dataclasses out.

- ``Scope``, ``WorkloadPeer``, ``AddressPeer``, ``OpaquePeer``, ``CommunicationRow``: the one row type
  from aggregated communications to verdicts (``rows``); ``stable_selector``: which labels select a
  workload's pods (``labels``)
- ``parse_policy``: NetworkPolicy manifest dict -> ``Policy`` (``PolicyError`` names policy and field)
- ``Evaluator``: exact networking.k8s.io/v1 evaluation of connections
- ``connectivity.connectivity``: the same answers for every ordered pod pair x (port, protocol) at once
- ``generate_policy`` / ``generate_policies``: least-privilege policies from communications + draft
- ``row_verdicts``: allowed/blocked per communication row under draft + applied policies
- ``to_yaml``: multi-document YAML
- ``load_case`` / ``run_case``: the probe-case format of ``manage.py probe_policies``
"""

from policies.engine.evaluate import Evaluator
from policies.engine.generate import (
    MODE_LABELS,
    MODES,
    DNSTarget,
    Draft,
    GenerationRequest,
    GenerationResult,
    GenerationWarning,
    ManualRule,
    Mode,
    PortRange,
    covered_by_dns_rule,
    generate_policies,
    generate_policy,
    parse_ports,
    policy_name,
)
from policies.engine.labels import CONTROLLER_LABELS, stable_selector
from policies.engine.model import (
    DIRECTIONS,
    CaseError,
    Connection,
    ContainerPort,
    Direction,
    Endpoint,
    EngineError,
    GenerationError,
    LabelSelector,
    Namespace,
    Pod,
    Policy,
    PolicyError,
    ProbeResult,
    Requirement,
    SideVerdict,
)
from policies.engine.parse import parse_policy
from policies.engine.probe import Case, load_case, run_case
from policies.engine.rows import (
    AddressPeer,
    CommunicationRow,
    OpaquePeer,
    RowPeer,
    Scope,
    WorkloadPeer,
    peer_namespace,
    split_row_key,
)
from policies.engine.selectors import label_key_problem, label_value_problem, parse_selector
from policies.engine.verdicts import RowVerdict, effective_policies, row_verdicts
from policies.engine.yamlout import to_yaml

__all__ = [
    "CONTROLLER_LABELS",
    "DIRECTIONS",
    "MODES",
    "MODE_LABELS",
    "AddressPeer",
    "Case",
    "CaseError",
    "CommunicationRow",
    "Connection",
    "ContainerPort",
    "DNSTarget",
    "Direction",
    "Draft",
    "Endpoint",
    "EngineError",
    "Evaluator",
    "GenerationError",
    "GenerationRequest",
    "GenerationResult",
    "GenerationWarning",
    "LabelSelector",
    "ManualRule",
    "Mode",
    "Namespace",
    "OpaquePeer",
    "Pod",
    "Policy",
    "PolicyError",
    "PortRange",
    "ProbeResult",
    "Requirement",
    "RowPeer",
    "RowVerdict",
    "Scope",
    "SideVerdict",
    "WorkloadPeer",
    "covered_by_dns_rule",
    "effective_policies",
    "generate_policies",
    "generate_policy",
    "label_key_problem",
    "label_value_problem",
    "load_case",
    "parse_policy",
    "parse_ports",
    "parse_selector",
    "peer_namespace",
    "policy_name",
    "row_verdicts",
    "run_case",
    "split_row_key",
    "stable_selector",
    "to_yaml",
]
