"""The SLURM backend's building blocks: sbatch rendering, squeue/scontrol parsing, and an
SSH transport with host-key checking and failover. The Backend subclass comes on top."""
