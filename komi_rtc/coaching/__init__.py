"""Coaching: the next workout for a person from their stored sets, by rules kept as data
(rules.json), and simulated people to judge those rules on (personas.py)."""

from .recommend import recommend
from .rules import Rules, RulesError, default_rules, load_rules, parse_rules

__all__ = ["Rules", "RulesError", "default_rules", "load_rules", "parse_rules", "recommend"]
