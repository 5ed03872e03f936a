"""Causal SSD (Mamba2's state-space duality over the row-major token order) and its bidirectional
variant: the token mixers of the paper's ablation (Table 5), next to NC-SSD."""
from .reference import bidirectional_ssd_reference, causal_ssd_reference

__all__ = ['causal_ssd_reference', 'bidirectional_ssd_reference']
