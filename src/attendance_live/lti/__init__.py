"""LTI 1.3 Advantage: the tool side of launches, roster sync (NRPS) and grades (AGS).

* ``registry``: platforms and deployments (``attendance-live lti ...``), the tool's RSA key
  and the configuration an LMS administrator pastes (``tool_config``);
* ``launch``: the OIDC third-party-initiated login and the id_token's validation;
* ``platform``: calls to the platform's services (client-credentials tokens, NRPS, AGS);
* ``service``: what a launch, a sync and a session's end do to courses and rosters.
"""

__all__: list[str] = []
