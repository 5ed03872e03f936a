from .attention import GlobalAttention
from .block import Mlp, VSSDBlock
from .conv import ConvLayer, Downsample, Stem
from .nc_ssd_mixer import NCSSDMixer

__all__ = ['ConvLayer', 'Downsample', 'GlobalAttention', 'Mlp', 'NCSSDMixer', 'Stem', 'VSSDBlock']
