"""The workbench: web pages for village cadres, townships and county monitoring teams (issue 13)."""
