"""Read a Kinesis stream and write it to S3 as Parquet: the job the EMR examples run.

    spark-submit --py-files kinesis_source.zip kinesis_to_s3.py \
        --stream orders --region eu-west-1 \
        --checkpoint-store dynamodb://orders-to-s3-progress \
        --checkpoint s3://my-bucket/checkpoints/orders-to-s3 \
        --output s3://my-bucket/tables/orders

Credentials come from boto3's default chain (on EMR: the cluster's instance profile;
on EMR Serverless: the job's execution role) unless --role-arn is given.
"""

from __future__ import annotations

import argparse

from pyspark.sql import SparkSession

import kinesis_source


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stream", required=True)
    parser.add_argument("--region", required=True)
    parser.add_argument("--checkpoint-store", required=True, help="dynamodb://TABLE or s3://…")
    parser.add_argument("--checkpoint", required=True, help="the query's checkpointLocation")
    parser.add_argument("--output", required=True, help="where the Parquet files go")
    parser.add_argument("--role-arn", help="a role to assume for Kinesis and the store")
    parser.add_argument("--initial-position", default="trim_horizon")
    parser.add_argument("--trigger-seconds", type=int, default=60)
    args = parser.parse_args()

    spark = SparkSession.builder.appName(f"kinesis-to-s3-{args.stream}").getOrCreate()
    # Works in every deploy mode, client mode included (docs/deploying.md).
    kinesis_source.register(spark)
    reader = (
        spark.readStream.format("kinesis")
        .option("streamName", args.stream)
        .option("region", args.region)
        .option("checkpointStore", args.checkpoint_store)
        .option("initialPosition", args.initial_position)
    )
    if args.role_arn:
        reader = reader.option("roleArn", args.role_arn)
    query = (
        reader.load()
        .selectExpr(
            "CAST(data AS STRING) AS body",
            "partitionKey",
            "shardId",
            "sequenceNumber",
            "approximateArrivalTimestamp",
            "to_date(approximateArrivalTimestamp) AS arrival_date",
        )
        .writeStream.format("parquet")
        .partitionBy("arrival_date")
        .option("path", args.output)
        .option("checkpointLocation", args.checkpoint)
        .trigger(processingTime=f"{args.trigger_seconds} seconds")
        .start()
    )
    query.awaitTermination()


if __name__ == "__main__":
    main()
