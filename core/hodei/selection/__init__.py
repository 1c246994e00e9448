"""Selection: which provider runs a job's worker.

Requirements go through the chain's filters, then the region tiers (preferred, allowed, any),
then its rankers. The built-in rules (``hodei.builtin_plugins.selection_rules``) and third-party ones are
plugins on the same hooks; see docs/plugin-authors.md.
"""

from hodei.selection.candidates import Candidate
from hodei.selection.chain import SelectionChain, build_chain
from hodei.selection.index import ProviderIndex
from hodei.selection.report import Explanation, Report
from hodei.selection.requirements import Requirements, parse_requirements
from hodei.selection.rules import (
    Filter,
    FilterRule,
    IndexedFilter,
    IndexedFilterRule,
    Mask,
    OrderingRule,
    Ranker,
    Reason,
    ScoringRule,
)
from hodei.selection.selector import TIERS, Decision, InvalidRow, Selector

__all__ = [
    "TIERS", "Candidate", "Decision", "Explanation", "Filter", "FilterRule", "IndexedFilter", "IndexedFilterRule",
    "InvalidRow", "Mask", "OrderingRule", "ProviderIndex", "Ranker", "Reason", "Report", "Requirements",
    "ScoringRule", "SelectionChain", "Selector", "build_chain", "parse_requirements",
]
