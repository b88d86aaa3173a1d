#!/bin/bash
#SBATCH --job-name=jy-6f1c2a9e-0d4b-4c1e-9a7e-1b2c3d4e5f60-r1
#SBATCH --partition=debug
#SBATCH --time=61
#SBATCH --ntasks=1
#SBATCH --chdir=/scratch/jobs/6f1c2a9e-0d4b-4c1e-9a7e-1b2c3d4e5f60/results
#SBATCH --output=/scratch/jobs/6f1c2a9e-0d4b-4c1e-9a7e-1b2c3d4e5f60/run-1/output.log
#SBATCH --error=/scratch/jobs/6f1c2a9e-0d4b-4c1e-9a7e-1b2c3d4e5f60/run-1/output.log
#SBATCH --open-mode=append
#SBATCH --no-requeue
# jobyard run jy-6f1c2a9e-0d4b-4c1e-9a7e-1b2c3d4e5f60-r1: generated, do not edit
export JY_ACTION=train
export JY_JOB_ID=6f1c2a9e-0d4b-4c1e-9a7e-1b2c3d4e5f60
export JY_RESULTS_DIR=/scratch/jobs/6f1c2a9e-0d4b-4c1e-9a7e-1b2c3d4e5f60/results
export JY_RUN=1
export JY_SPECS_FILE=/scratch/jobs/6f1c2a9e-0d4b-4c1e-9a7e-1b2c3d4e5f60/run-1/specs.json
export JY_STATUS_FILE=/scratch/jobs/6f1c2a9e-0d4b-4c1e-9a7e-1b2c3d4e5f60/run-1/status.jsonl
exec /opt/py/bin/python3 -m jobyard.workloads.classifier
