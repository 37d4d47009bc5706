"""The files derived from the code (gateway config, topic job, rules and dashboard copies, settings
reference) are what the code gives today; `python -m deploy.generate` rewrites them."""

from deploy import generate
from devstack.processes import ROUTES


def test_generated_files_are_up_to_date():
    assert [str(path.relative_to(generate.ROOT)) for path in generate.stale()] == []


def test_gateway_has_the_embedded_defaults_routes():
    config = generate.gateway_config()
    for service, prefixes in ROUTES.items():
        for prefix in prefixes:
            assert f"location /api/v1/{prefix} {{ proxy_pass http://{service}; }}" in config
        assert f"location /api/v1/dead-letters/{service} {{ proxy_pass http://{service}; }}" in config
        assert f"server {service}:{generate.SERVICE_PORTS[service]};" in config
    assert "127.0.0.1:81" not in config
    assert "listen 8080;" in config


def test_settings_reference_names_every_setting():
    reference = generate.settings_reference()
    for names in generate.setting_names().values():
        for name in names:
            assert f"`{name}`" in reference
