# The HTML report (see the report issue).
