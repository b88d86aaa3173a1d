#!/bin/bash
#SBATCH --job-name=jy-6f1c2a9e-0d4b-4c1e-9a7e-1b2c3d4e5f60-r1
#SBATCH --partition=debug
#SBATCH --ntasks=1
#SBATCH --chdir=/scratch/jobs/6f1c2a9e-0d4b-4c1e-9a7e-1b2c3d4e5f60/results
#SBATCH --output=/scratch/jobs/6f1c2a9e-0d4b-4c1e-9a7e-1b2c3d4e5f60/run-1/output.log
#SBATCH --error=/scratch/jobs/6f1c2a9e-0d4b-4c1e-9a7e-1b2c3d4e5f60/run-1/output.log
#SBATCH --open-mode=append
#SBATCH --no-requeue
# jobyard run jy-6f1c2a9e-0d4b-4c1e-9a7e-1b2c3d4e5f60-r1: generated, do not edit
export JY_ACTION=serve
export JY_JOB_ID=6f1c2a9e-0d4b-4c1e-9a7e-1b2c3d4e5f60
export JY_RESULTS_DIR=/scratch/jobs/6f1c2a9e-0d4b-4c1e-9a7e-1b2c3d4e5f60/results
export JY_RUN=1
export JY_SERVE_HOST=0.0.0.0
export JY_SERVE_PORT=0
export JY_SPECS_FILE=/scratch/jobs/6f1c2a9e-0d4b-4c1e-9a7e-1b2c3d4e5f60/run-1/specs.json
export JY_STATUS_FILE=/scratch/jobs/6f1c2a9e-0d4b-4c1e-9a7e-1b2c3d4e5f60/run-1/status.jsonl
export JY_SERVE_PORT=$(/opt/py/bin/python3 -c 'import socket; s = socket.socket(); s.bind(('"'"''"'"', 0)); print(s.getsockname()[1])')
printf '%s %s\n' "$SLURMD_NODENAME" "$JY_SERVE_PORT" > /scratch/jobs/6f1c2a9e-0d4b-4c1e-9a7e-1b2c3d4e5f60/run-1/serving.addr
exec /opt/py/bin/python3 -m jobyard.workloads.server
