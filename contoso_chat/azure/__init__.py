"""The Azure side, as code: provisioning (hub, project, connections, model deployments) and the Azure ML
online endpoint."""
