"""Pure domain vocabulary, beneath probes, checks, elf and commands.

Nothing here touches the machine (no files, processes or NVML): compute capabilities and the one parser of
GPU target names (`arch`), which code runs on which GPU (`compat`), PCI device ids → chip and compute
capability (`gpus`, `pci_ids`), CUDA toolkit and driver tables (`cuda`), x86-64 ISA levels (`isa`), and
version ordering (`versions`: PEP 440 through `packaging`; driver and kernel versions as tuples).
"""
