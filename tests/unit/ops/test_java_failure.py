"""A JVM that fails says why in one line, not with the end of its stack trace."""

from jobpipe.devstack.kafka_cluster import java_failure

TRACE = """Exception in thread "main" java.lang.RuntimeException: could not format
\tat kafka.tools.StorageTool$.main(StorageTool.scala:54)
Caused by: java.nio.file.AccessDeniedException: /data/meta.properties
\tat java.base/sun.nio.fs.UnixException.translateToIOException(UnixException.java:90)
\t... 8 more
"""


def test_the_innermost_cause_is_named() -> None:
    assert java_failure(TRACE) == ("Caused by: java.nio.file.AccessDeniedException: "
                                   "/data/meta.properties")


def test_without_a_cause_the_first_exception_line_and_else_the_last_line() -> None:
    assert java_failure(TRACE.split("Caused")[0]).startswith('Exception in thread "main"')
    assert java_failure("Formatting failed\nbad cluster id\n") == "bad cluster id"
    assert java_failure("") == ""
