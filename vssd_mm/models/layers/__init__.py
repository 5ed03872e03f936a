from .attention import GlobalAttention
from .block import Mlp, VSSDBlock
from .conv import ConvLayer, Downsample, SimpleDownsample, SimpleStem, Stem
from .nc_ssd_mixer import NCSSDMixer

__all__ = ['ConvLayer', 'Downsample', 'GlobalAttention', 'Mlp', 'NCSSDMixer', 'SimpleDownsample',
           'SimpleStem', 'Stem', 'VSSDBlock']
