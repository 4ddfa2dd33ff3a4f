"""AWS clients: the boto3 client factory and the retry policy, shared by the source and the
checkpoint stores."""
