# Seed 000's object detection walkthrough (TAO API v2 guide), run against jobyard with the
# TAO stand-in's rtdetr entry. Lines between "seed 000, verbatim" markers are copied from
# the seed unchanged (only BASE_URL and the key differ: they come from the environment);
# the rest is glue: the dataset the URIs name, and waiting for each job before the next,
# which the guide leaves to the reader ("After training completes, run evaluation").
# Runs after README's walkthrough block (TOKEN, WORKSPACE_ID).

wait_done() {  # job id, label: wait until the job is Done (fail on Error)
    for i in $(seq 120); do
        STATUS=$(curl -s $BASE_URL/orgs/$NGC_ORG_NAME/jobs/$1 -H "Authorization: Bearer $TOKEN" | jq -r .status)
        [ "$STATUS" = Done ] || [ "$STATUS" = Error ] && break
        sleep 0.5
    done
    echo "$2: $STATUS $1"
    [ "$STATUS" = Done ]
}

# glue: a COCO dataset in the workspace (seed 001's dataset create); the seed's URIs name it
DATASET_ID=$(curl -s -X POST $BASE_URL/orgs/$NGC_ORG_NAME/datasets \
    -H "Authorization: Bearer $TOKEN" -H "Content-Type: application/json" \
    -d '{"name": "coco-small", "type": "object_detection", "format": "coco",
         "workspace": "'"$WORKSPACE_ID"'", "cloud_file_path": "coco",
         "use_for": ["training", "evaluation"]}' | jq -r .id)
echo "dataset: $DATASET_ID"
TRAIN_DATASET_URI=$DATASET_ID
EVAL_DATASET_URI=$DATASET_ID

# seed 000, verbatim: Dataset Conversion Job
CONVERT_JOB_ID=$(curl -s -X POST $BASE_URL/orgs/$NGC_ORG_NAME/jobs \
    -H "Content-Type: application/json" \
    -H "Authorization: Bearer $TOKEN" \
    -d '{
        "kind": "dataset",
        "train_dataset_uris": ["'"$TRAIN_DATASET_URI"'"],
        "action": "convert",
        "specs": {
            "output_format": "tfrecords",
            "train_split": 0.8,
            "val_split": 0.2,
            "shuffle": true
        }
    }' | jq -r '.id')
echo $CONVERT_JOB_ID
# end of seed 000
wait_done $CONVERT_JOB_ID convert

# seed 000, verbatim: 3. List Base Experiments
    # List all base experiments
    curl -s -X GET $BASE_URL/orgs/$NGC_ORG_NAME/jobs:list_base_experiments \
        -H "Authorization: Bearer $TOKEN" | jq

    # Find specific base experiment (e.g., RT-DETR with ResNet50)
    BASE_EXPERIMENT_ID=$(curl -s -X GET \
        $BASE_URL/orgs/$NGC_ORG_NAME/jobs:list_base_experiments \
        -H "Authorization: Bearer $TOKEN" | \
        jq -r '[.base_experiments[] | select(.network_arch == "rtdetr") | select(.ngc_path | contains("resnet50"))][0] | .id')
    echo $BASE_EXPERIMENT_ID

# 4. Create Training Job (Unified v2 API)
# Get job schema for train action
TRAIN_SCHEMA=$(curl -s -X GET \
    "$BASE_URL/orgs/$NGC_ORG_NAME/jobs:schema?action=train&base_experiment_id=$BASE_EXPERIMENT_ID" \
    -H "Authorization: Bearer $TOKEN" | jq -r '.default')

# Modify specs as needed
TRAIN_SPECS=$(echo $TRAIN_SCHEMA | jq '.train.num_epochs=10 | .train.num_gpus=2')

# Create training job
TRAIN_JOB_ID=$(curl -s -X POST $BASE_URL/orgs/$NGC_ORG_NAME/jobs \
    -H "Content-Type: application/json" \
    -H "Authorization: Bearer $TOKEN" \
    -d '{
        "kind": "experiment",
        "name": "rtdetr_training_job",
        "network_arch": "rtdetr",
        "encryption_key": "tlt_encode",
        "workspace": "'"$WORKSPACE_ID"'",
        "action": "train",
        "specs": '"$TRAIN_SPECS"',
        "train_dataset_uris": ["'"$TRAIN_DATASET_URI"'"],
        "eval_dataset_uri": "'"$EVAL_DATASET_URI"'",
        "inference_dataset_uri": "'"$EVAL_DATASET_URI"'",
        "calibration_dataset_uri": "'"$TRAIN_DATASET_URI"'",
        "base_experiment_ids": ["'"$BASE_EXPERIMENT_ID"'"],
        "automl_settings": {
            "automl_enabled": false
        }
    }' | jq -r '.id')
echo $TRAIN_JOB_ID
# end of seed 000
wait_done $TRAIN_JOB_ID train

# seed 000, verbatim: 5. Monitor Training Job Status
    # Get job status
    curl -s -X GET $BASE_URL/orgs/$NGC_ORG_NAME/jobs/$TRAIN_JOB_ID \
        -H "Authorization: Bearer $TOKEN" | jq '.status'

    # Get detailed job metadata
    curl -s -X GET $BASE_URL/orgs/$NGC_ORG_NAME/jobs/$TRAIN_JOB_ID \
        -H "Authorization: Bearer $TOKEN" | jq

    # Get job logs
    curl -s -X GET "$BASE_URL/orgs/$NGC_ORG_NAME/jobs/$TRAIN_JOB_ID:logs" \
        -H "Authorization: Bearer $TOKEN"

    # Get all status events emitted by the framework for this job
    curl -s -X GET "$BASE_URL/orgs/$NGC_ORG_NAME/jobs/$TRAIN_JOB_ID:events" \
        -H "Authorization: Bearer $TOKEN" | jq

# 7. Create Evaluation Job
    # Get evaluation schema
    EVAL_SCHEMA=$(curl -s -X GET \
        "$BASE_URL/orgs/$NGC_ORG_NAME/jobs:schema?action=evaluate&base_experiment_id=$BASE_EXPERIMENT_ID" \
        -H "Authorization: Bearer $TOKEN" | jq -r '.default')

    # Create evaluation job
    EVAL_JOB_ID=$(curl -s -X POST $BASE_URL/orgs/$NGC_ORG_NAME/jobs \
        -H "Content-Type: application/json" \
        -H "Authorization: Bearer $TOKEN" \
        -d '{
            "kind": "experiment",
            "name": "rtdetr_evaluation_job",
            "network_arch": "rtdetr",
            "encryption_key": "tlt_encode",
            "workspace": "'"$WORKSPACE_ID"'",
            "action": "evaluate",
            "parent_job_id": "'"$TRAIN_JOB_ID"'",
            "specs": '"$EVAL_SCHEMA"',
            "eval_dataset_uri": "'"$EVAL_DATASET_URI"'"
        }' | jq -r '.id')
    echo $EVAL_JOB_ID

# 8. Create Inference Job
    # Get inference schema
    INFERENCE_SCHEMA=$(curl -s -X GET \
        "$BASE_URL/orgs/$NGC_ORG_NAME/jobs:schema?action=inference&base_experiment_id=$BASE_EXPERIMENT_ID" \
        -H "Authorization: Bearer $TOKEN" | jq -r '.default')

    # Create inference job
    INFERENCE_JOB_ID=$(curl -s -X POST $BASE_URL/orgs/$NGC_ORG_NAME/jobs \
        -H "Content-Type: application/json" \
        -H "Authorization: Bearer $TOKEN" \
        -d '{
            "kind": "experiment",
            "name": "rtdetr_inference_job",
            "network_arch": "rtdetr",
            "encryption_key": "tlt_encode",
            "workspace": "'"$WORKSPACE_ID"'",
            "action": "inference",
            "parent_job_id": "'"$TRAIN_JOB_ID"'",
            "specs": '"$INFERENCE_SCHEMA"',
            "inference_dataset_uri": "'"$EVAL_DATASET_URI"'"
        }' | jq -r '.id')
    echo $INFERENCE_JOB_ID

# 9. Export Model to ONNX
    # Get export schema
    EXPORT_SCHEMA=$(curl -s -X GET \
        "$BASE_URL/orgs/$NGC_ORG_NAME/jobs:schema?action=export&base_experiment_id=$BASE_EXPERIMENT_ID" \
        -H "Authorization: Bearer $TOKEN" | jq -r '.default')

    # Create export job
    EXPORT_JOB_ID=$(curl -s -X POST $BASE_URL/orgs/$NGC_ORG_NAME/jobs \
        -H "Content-Type: application/json" \
        -H "Authorization: Bearer $TOKEN" \
        -d '{
            "kind": "experiment",
            "name": "rtdetr_export_job",
            "network_arch": "rtdetr",
            "encryption_key": "tlt_encode",
            "workspace": "'"$WORKSPACE_ID"'",
            "action": "export",
            "parent_job_id": "'"$TRAIN_JOB_ID"'",
            "specs": '"$EXPORT_SCHEMA"'
        }' | jq -r '.id')
    echo $EXPORT_JOB_ID
# end of seed 000
wait_done $EVAL_JOB_ID evaluate
wait_done $INFERENCE_JOB_ID inference
wait_done $EXPORT_JOB_ID export

# seed 000, verbatim: 10. Generate TensorRT Engine
    # Get TensorRT engine schema
    TRT_SCHEMA=$(curl -s -X GET \
        "$BASE_URL/orgs/$NGC_ORG_NAME/jobs:schema?action=gen_trt_engine&base_experiment_id=$BASE_EXPERIMENT_ID" \
        -H "Authorization: Bearer $TOKEN" | jq -r '.default')

    # Create TensorRT engine generation job
    TRT_JOB_ID=$(curl -s -X POST $BASE_URL/orgs/$NGC_ORG_NAME/jobs \
        -H "Content-Type: application/json" \
        -H "Authorization: Bearer $TOKEN" \
        -d '{
            "kind": "experiment",
            "name": "rtdetr_trt_engine_job",
            "network_arch": "rtdetr",
            "encryption_key": "tlt_encode",
            "workspace": "'"$WORKSPACE_ID"'",
            "action": "gen_trt_engine",
            "parent_job_id": "'"$EXPORT_JOB_ID"'",
            "specs": '"$TRT_SCHEMA"'
        }' | jq -r '.id')
    echo $TRT_JOB_ID

# 11. Download Job Files
    # List job files
    curl -s -X POST "$BASE_URL/orgs/$NGC_ORG_NAME/jobs/$TRAIN_JOB_ID:list_files" \
        -H "Content-Type: application/json" \
        -H "Authorization: Bearer $TOKEN" \
        -d '{
            "retrieve_logs": true,
            "retrieve_specs": true
        }' | jq

    # Download selective files
    curl -s -X POST "$BASE_URL/orgs/$NGC_ORG_NAME/jobs/$TRAIN_JOB_ID:download_selective_files" \
        -H "Content-Type: application/json" \
        -H "Authorization: Bearer $TOKEN" \
        -d '{
            "best_model": true,
            "latest_model": false
        }' > job_files.tar.gz
# end of seed 000
wait_done $TRT_JOB_ID gen_trt_engine
echo "ids: $CONVERT_JOB_ID $TRAIN_JOB_ID $EVAL_JOB_ID $INFERENCE_JOB_ID $EXPORT_JOB_ID $TRT_JOB_ID"

# glue: what the test checks
curl -s $BASE_URL/orgs/$NGC_ORG_NAME/jobs/$CONVERT_JOB_ID -H "Authorization: Bearer $TOKEN" | jq -c '{convert: {network_arch, output_dataset_id}}'
curl -s $BASE_URL/orgs/$NGC_ORG_NAME/jobs/$TRAIN_JOB_ID -H "Authorization: Bearer $TOKEN" | jq -c '{train: [.job_details.kpi[].metric]}'
curl -s $BASE_URL/orgs/$NGC_ORG_NAME/jobs/$EVAL_JOB_ID -H "Authorization: Bearer $TOKEN" | jq -c '{evaluate: .parent_checkpoint}'
curl -s -X POST "$BASE_URL/orgs/$NGC_ORG_NAME/jobs/$TRT_JOB_ID:list_files" -H "Authorization: Bearer $TOKEN" | jq -c '{gen_trt_engine: .}'
curl -s -X POST "$BASE_URL/orgs/$NGC_ORG_NAME/jobs/$INFERENCE_JOB_ID:list_files" -H "Authorization: Bearer $TOKEN" | jq -c '{inference: .}'
tar -tzf job_files.tar.gz | jq -R -c '{best: .}'
