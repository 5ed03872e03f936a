from .attention import GlobalAttention
from .block import Mlp, VSSDBlock
from .conv import ConvLayer, Downsample, SimpleDownsample, SimpleStem, Stem
from .ssd_mixer import SSDMixer

__all__ = ['ConvLayer', 'Downsample', 'GlobalAttention', 'Mlp', 'SSDMixer', 'SimpleDownsample',
           'SimpleStem', 'Stem', 'VSSDBlock']
