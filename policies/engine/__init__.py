"""netsec's policy engine: pure Python (no Django), dataclasses in, dataclasses out.

- ``parse_policy``: NetworkPolicy manifest dict -> ``Policy`` (``PolicyError`` names policy and field)
- ``Evaluator``: exact networking.k8s.io/v1 evaluation of connections
- ``generate_policy`` / ``generate_policies``: least-privilege policies from communications + draft
- ``row_verdicts``: allowed/blocked per communication row under draft + applied policies
- ``to_yaml``: multi-document YAML
- ``load_case`` / ``run_case``: the probe-case format of ``manage.py probe_policies``
"""

from policies.engine.evaluate import Evaluator
from policies.engine.generate import (
    CIDRPeer,
    CommunicationRow,
    DNSTarget,
    Draft,
    GenerationRequest,
    GenerationResult,
    GenerationWarning,
    IPPeer,
    ManualRule,
    Mode,
    PortRange,
    Scope,
    WorkloadPeer,
    generate_policies,
    generate_policy,
    policy_name,
)
from policies.engine.model import (
    CaseError,
    Connection,
    ContainerPort,
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
from policies.engine.verdicts import RowVerdict, effective_policies, row_verdicts
from policies.engine.yamlout import to_yaml

__all__ = [
    "CIDRPeer",
    "Case",
    "CaseError",
    "CommunicationRow",
    "Connection",
    "ContainerPort",
    "DNSTarget",
    "Draft",
    "Endpoint",
    "EngineError",
    "Evaluator",
    "GenerationError",
    "GenerationRequest",
    "GenerationResult",
    "GenerationWarning",
    "IPPeer",
    "LabelSelector",
    "ManualRule",
    "Mode",
    "Namespace",
    "Pod",
    "Policy",
    "PolicyError",
    "PortRange",
    "ProbeResult",
    "Requirement",
    "RowVerdict",
    "Scope",
    "SideVerdict",
    "WorkloadPeer",
    "effective_policies",
    "generate_policies",
    "generate_policy",
    "load_case",
    "parse_policy",
    "policy_name",
    "row_verdicts",
    "run_case",
    "to_yaml",
]
