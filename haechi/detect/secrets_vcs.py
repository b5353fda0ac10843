# SPDX-License-Identifier: Apache-2.0
"""Secret rules for source hosting: GitHub, GitLab and Bitbucket.

GitHub classic tokens carry a CRC-32 checksum (see :mod:`haechi.detect.checksums`), so a
string with the right prefix but a wrong checksum is rejected. GitLab prefixes every token
type with its own ``gl*`` marker; each gets a rule so the finding names the token kind.
"""

from __future__ import annotations

from typing import Final

from haechi.detect.checksums import github_classic_token_ok
from haechi.detect.rule import Rule
from haechi.detect.secrets_shapes import SECRET_TYPE, TOKEN_CHARS, bounded, secret_rule

__all__ = ["VCS_RULES"]


def _gitlab(rule_id: str, body: str, prefilter: str, description: str) -> Rule:
    return secret_rule(rule_id, SECRET_TYPE, bounded(body, TOKEN_CHARS), (prefilter,), description)


VCS_RULES: Final[tuple[Rule, ...]] = (
    secret_rule(
        "github-token",
        SECRET_TYPE,
        bounded(r"(?:gh[pou]_[A-Za-z0-9]{36}|gh[sr]_[A-Za-z0-9]{36,255})"),
        ("ghp_", "gho_", "ghu_", "ghs_", "ghr_"),
        "GitHub classic token (personal, OAuth, user-to-server, server-to-server, refresh)",
        validator=github_classic_token_ok,
        confidence=0.99,
    ),
    secret_rule(
        "github-fine-grained-pat",
        SECRET_TYPE,
        bounded(r"github_pat_[A-Za-z0-9]{22}_[A-Za-z0-9]{59}"),
        ("github_pat_",),
        "GitHub fine-grained personal access token",
    ),
    _gitlab(
        "gitlab-pat",
        r"glpat-[A-Za-z0-9_-]{20,}",
        "glpat-",
        "GitLab personal, project or group access token",
    ),
    _gitlab(
        "gitlab-pipeline-trigger-token",
        r"glptt-[0-9a-f]{40}",
        "glptt-",
        "GitLab pipeline trigger token",
    ),
    secret_rule(
        "gitlab-runner-token",
        SECRET_TYPE,
        bounded(r"(?:glrt-[A-Za-z0-9_-]{20,}|GR1348941[A-Za-z0-9_-]{20,})", TOKEN_CHARS),
        ("glrt-", "GR1348941"),
        "GitLab runner authentication or registration token",
    ),
    _gitlab("gitlab-deploy-token", r"gldt-[A-Za-z0-9_-]{20,}", "gldt-", "GitLab deploy token"),
    _gitlab("gitlab-feed-token", r"glft-[A-Za-z0-9_-]{20,}", "glft-", "GitLab feed token"),
    _gitlab(
        "gitlab-oauth-secret",
        r"gloas-[A-Za-z0-9_-]{64}",
        "gloas-",
        "GitLab OAuth application secret",
    ),
    _gitlab(
        "gitlab-scim-token",
        r"glsoat-[A-Za-z0-9_-]{20,}",
        "glsoat-",
        "GitLab SCIM OAuth access token",
    ),
    _gitlab(
        "gitlab-ci-job-token",
        r"glcbt-[A-Za-z0-9]{1,5}_[A-Za-z0-9_-]{20,}",
        "glcbt-",
        "GitLab CI/CD job token",
    ),
    _gitlab(
        "gitlab-incoming-email-token",
        r"glimt-[A-Za-z0-9_-]{25,}",
        "glimt-",
        "GitLab incoming e-mail token",
    ),
    _gitlab(
        "gitlab-agent-token",
        r"glagent-[A-Za-z0-9_-]{50,}",
        "glagent-",
        "GitLab agent for Kubernetes token",
    ),
    _gitlab(
        "gitlab-feature-flags-token",
        r"glffct-[A-Za-z0-9_-]{20,}",
        "glffct-",
        "GitLab feature flags client token",
    ),
    secret_rule(
        "bitbucket-app-password",
        SECRET_TYPE,
        bounded(r"ATBB[A-Za-z0-9_=.-]{28,}", "A-Za-z0-9_=.-"),
        ("ATBB",),
        "Bitbucket app password",
    ),
    secret_rule(
        "bitbucket-access-token",
        SECRET_TYPE,
        bounded(r"ATCTT3xFfGN0[A-Za-z0-9_=-]{80,}", "A-Za-z0-9_=-"),
        ("ATCTT3xFfGN0",),
        "Bitbucket repository, project or workspace access token",
    ),
)
