"""Launch the project on AWS EMR at minimal cost: the ``fruits-emr`` command and its parts.

``config`` reads ``conf/emr/`` (globals, Spark settings, cluster and prices); ``requests`` builds
the exact boto3 requests as pure dictionaries; ``validate`` checks them against botocore's service
model; ``emr`` makes the calls (or prints them, in a dry run) and runs the whole flow; ``estimate``
prices a run; ``cli`` is the command line.
"""
