// Reads a JSON array of Kinesis records ({partitionKey, data: base64}) on stdin and prints
// the user records npm aws-kinesis-agg finds in them (checksums checked), as JSON.
const agg = require("aws-kinesis-agg");

let input = "";
process.stdin.on("data", (chunk) => { input += chunk; });
process.stdin.on("end", () => {
  const out = [];
  for (const [index, record] of JSON.parse(input).entries()) {
    const kinesisRecord = { partitionKey: record.partitionKey, sequenceNumber: String(index), data: record.data };
    agg.deaggregateSync(kinesisRecord, true, (err, users) => {
      if (err) { throw err; }
      for (const user of users) {
        out.push({ partitionKey: user.partitionKey, explicitHashKey: user.explicitPartitionKey ?? null, data: user.data });
      }
    });
  }
  process.stdout.write(JSON.stringify(out));
});
