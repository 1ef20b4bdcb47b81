"""The Slack adapter: slack-bolt listeners, persona posting, the HTTP endpoint."""
