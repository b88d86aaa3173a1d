#!/bin/bash
#SBATCH --job-name=jy-6f1c2a9e-0d4b-4c1e-9a7e-1b2c3d4e5f60-r3
#SBATCH --time=2
#SBATCH --ntasks=1
#SBATCH --chdir=/scratch/jobs/6f1c2a9e-0d4b-4c1e-9a7e-1b2c3d4e5f60/results
#SBATCH --output=/scratch/jobs/6f1c2a9e-0d4b-4c1e-9a7e-1b2c3d4e5f60/run-3/output.log
#SBATCH --error=/scratch/jobs/6f1c2a9e-0d4b-4c1e-9a7e-1b2c3d4e5f60/run-3/output.log
#SBATCH --open-mode=append
#SBATCH --no-requeue
# jobyard run jy-6f1c2a9e-0d4b-4c1e-9a7e-1b2c3d4e5f60-r3: generated, do not edit
export JY_ACTION=evaluate
export JY_JOB_ID=6f1c2a9e-0d4b-4c1e-9a7e-1b2c3d4e5f60
export JY_PARENT_RESULTS_DIR=/scratch/jobs/parent/results
export JY_RESULTS_DIR=/scratch/jobs/6f1c2a9e-0d4b-4c1e-9a7e-1b2c3d4e5f60/results
export JY_RUN=3
export JY_SPECS_FILE=/scratch/jobs/6f1c2a9e-0d4b-4c1e-9a7e-1b2c3d4e5f60/run-3/specs.json
export JY_STATUS_FILE=/scratch/jobs/6f1c2a9e-0d4b-4c1e-9a7e-1b2c3d4e5f60/run-3/status.jsonl
export PYTHONPATH=/srv/jobyard
export QUOTED='a'"'"'b "c" $(rm -rf /) `x` \n'
exec /opt/py/bin/python3 -c 'print('"'"'it'"'"''"'"'s $HOME'"'"')' 'two words' ''
