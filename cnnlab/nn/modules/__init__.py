"""The layers, one file per family; each file's ``__all__`` is re-exported."""
from cnnlab.nn.modules.activation import *  # noqa: F401,F403
from cnnlab.nn.modules.activation import __all__ as _activation
from cnnlab.nn.modules.batchnorm import *  # noqa: F401,F403
from cnnlab.nn.modules.batchnorm import __all__ as _batchnorm
from cnnlab.nn.modules.combination import *  # noqa: F401,F403
from cnnlab.nn.modules.combination import __all__ as _combination
from cnnlab.nn.modules.connection_table import *  # noqa: F401,F403
from cnnlab.nn.modules.connection_table import __all__ as _connection_table
from cnnlab.nn.modules.container import *  # noqa: F401,F403
from cnnlab.nn.modules.container import __all__ as _container
from cnnlab.nn.modules.conv import *  # noqa: F401,F403
from cnnlab.nn.modules.conv import __all__ as _conv
from cnnlab.nn.modules.dropout import *  # noqa: F401,F403
from cnnlab.nn.modules.dropout import __all__ as _dropout
from cnnlab.nn.modules.linear import *  # noqa: F401,F403
from cnnlab.nn.modules.linear import __all__ as _linear
from cnnlab.nn.modules.local import *  # noqa: F401,F403
from cnnlab.nn.modules.local import __all__ as _local
from cnnlab.nn.modules.loss import *  # noqa: F401,F403
from cnnlab.nn.modules.loss import __all__ as _loss
from cnnlab.nn.modules.normalization import *  # noqa: F401,F403
from cnnlab.nn.modules.normalization import __all__ as _normalization
from cnnlab.nn.modules.pooling import *  # noqa: F401,F403
from cnnlab.nn.modules.pooling import __all__ as _pooling
from cnnlab.nn.modules.rbf import *  # noqa: F401,F403
from cnnlab.nn.modules.rbf import __all__ as _rbf

__all__ = sorted({*_activation, *_batchnorm, *_combination, *_connection_table, *_container, *_conv,
                  *_dropout, *_linear, *_local, *_loss, *_normalization, *_pooling, *_rbf})
