"""Neural-network quantum states."""

from ._arnn import (
    AbstractARNNSequential as AbstractARNNSequential,
    ARNNConv1D as ARNNConv1D,
    ARNNConv2D as ARNNConv2D,
    ARNNDense as ARNNDense,
)
from ._autoreg import (
    AbstractARNN as AbstractARNN,
    AbstractFastARNN as AbstractFastARNN,
    mask_log_conditionals as mask_log_conditionals,
    normalize_log_conditionals as normalize_log_conditionals,
)
from ._deepset_mlp import DeepSetMLP as DeepSetMLP
from ._deepset_rel import DeepSetRelDistance as DeepSetRelDistance
from ._fast_arnn import (
    AbstractFastARNNSequential as AbstractFastARNNSequential,
    FastARNNConv1D as FastARNNConv1D,
    FastARNNConv2D as FastARNNConv2D,
    FastARNNDense as FastARNNDense,
)
from ._gcnn import GCNN as GCNN
from ._jastrow import Jastrow as Jastrow
from ._lookup import AbstractLookupModel as AbstractLookupModel
from ._mlp import MLP as MLP
from ._mps import AbstractMPS as AbstractMPS, MPSOpen as MPSOpen, MPSPeriodic as MPSPeriodic
from ._rbm import RBM as RBM, RBMModPhase as RBMModPhase, RBMMultiVal as RBMMultiVal
from ._rbm_symm import RBMSymm as RBMSymm
from ._rnn import (
    AbstractFastRNN as AbstractFastRNN,
    AbstractRNN as AbstractRNN,
    FastGRUNet1D as FastGRUNet1D,
    FastLSTMNet as FastLSTMNet,
    FastRNN as FastRNN,
    GRUNet1D as GRUNet1D,
    LSTMNet as LSTMNet,
    RNN as RNN,
)
from ._sign import (
    marshall_sign as marshall_sign,
    MarshallSign as MarshallSign,
    MarshallSignARNN as MarshallSignARNN,
)
from ._spin_flip import SpinFlipSymmetricARNN as SpinFlipSymmetricARNN
from ._symmetrized import Symmetrized as Symmetrized
from ._transformer import (
    ARTransformer as ARTransformer,
    FastARTransformer as FastARTransformer,
)
from ._vit import ViT as ViT
