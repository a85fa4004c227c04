"""The tokendistill CLI with accelerate's FSDP turned on for CPU processes (gloo), for tests only.

accelerate enables FSDP on accelerators only and runs plain data parallelism on CPU (its AcceleratorState);
torch's FSDP2 itself shards on CPU over gloo. Setting the distributed type that accelerate would have set on
GPUs lets the CPU suite run the real sharded path: accelerate's FSDP2 preparation, DTensor parameters,
gathered state dicts. Launched by torchrun with accelerate's FSDP environment (tests/test_distributed.py).
"""

from __future__ import annotations

import sys
from typing import Any

from accelerate.state import AcceleratorState, PartialState
from accelerate.utils import DistributedType

_accelerator_state_init = AcceleratorState.__init__


def _with_fsdp_on_cpu(self: AcceleratorState, *args: Any, fsdp_plugin: Any = None, **kwargs: Any) -> None:
    _accelerator_state_init(self, *args, fsdp_plugin=fsdp_plugin, **kwargs)
    if fsdp_plugin is not None and self.distributed_type == DistributedType.MULTI_CPU:
        self.distributed_type = DistributedType.FSDP
        self.fsdp_plugin = fsdp_plugin
        # A later AcceleratorState() copies the process-wide state back; it must say FSDP too.
        PartialState._shared_state["distributed_type"] = DistributedType.FSDP


AcceleratorState.__init__ = _with_fsdp_on_cpu  # type: ignore[method-assign]

if __name__ == "__main__":
    from tokendistill.cli import main

    sys.exit(main(sys.argv[1:]))
