"""Building blocks: activations, initialisers and (masked) layers."""

from . import initializers as initializers
from ._activations import gelu as gelu, log_cosh as log_cosh, reim_selu as reim_selu
from ._attention import (
    CausalSelfAttention as CausalSelfAttention,
    FastCausalSelfAttention as FastCausalSelfAttention,
    LayerNorm as LayerNorm,
    split_gelu as split_gelu,
    TransformerBlock as TransformerBlock,
)
from ._masked_conv1d import FastMaskedConv1D as FastMaskedConv1D, MaskedConv1D as MaskedConv1D
from ._masked_conv2d import FastMaskedConv2D as FastMaskedConv2D, MaskedConv2D as MaskedConv2D
from ._masked_dense import FastMaskedDense1D as FastMaskedDense1D, MaskedDense1D as MaskedDense1D
from ._recurrent import (
    AbstractRNNCell as AbstractRNNCell,
    GRU1DCell as GRU1DCell,
    LSTMCell as LSTMCell,
    SimpleRNNCell as SimpleRNNCell,
)
from ._rnn_ordering import (
    graph_ordering as graph_ordering,
    resolve_ordering as resolve_ordering,
    snake_ordering as snake_ordering,
)
from ._symm_layers import DenseEquivariant as DenseEquivariant, DenseSymm as DenseSymm
from ._vit_layers import (
    FactoredAttention as FactoredAttention,
    ViTEncoderBlock as ViTEncoderBlock,
)
