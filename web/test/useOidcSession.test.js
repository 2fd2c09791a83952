import { describe, expect, it } from 'vitest';
import * as oidc from 'oidc-client-ts';
import { CALLBACK_PATH, createUserManager, plainWords } from '../src/hooks/useOidcSession.js';

const SIGN_IN = { issuer: 'https://idp.example/realms/uni', client_id: 'dash', scopes: 'openid profile', display_name: 'Uni login' };

describe('createUserManager', () => {
  it('is a public client with the code flow, our callback, and tokens in sessionStorage', () => {
    const { settings } = createUserManager(oidc, SIGN_IN, 'https://attendance.example');
    expect(settings.authority).toBe(SIGN_IN.issuer);
    expect(settings.client_id).toBe('dash');
    expect(settings.client_secret).toBeUndefined();
    expect(settings.response_type).toBe('code');
    expect(settings.redirect_uri).toBe(`https://attendance.example${CALLBACK_PATH}`);
    expect(settings.post_logout_redirect_uri).toBe('https://attendance.example/');
    expect(settings.scope).toBe('openid profile');
    expect(settings.automaticSilentRenew).toBe(true);
    expect(settings.resource).toBeUndefined();
  });

  it('asks for the API audience both ways when one is configured', () => {
    const { settings } = createUserManager(oidc, { ...SIGN_IN, audience: 'https://api.example' }, 'https://a.example');
    expect(settings.resource).toBe('https://api.example');
    expect(settings.extraQueryParams).toEqual({ audience: 'https://api.example' });
  });
});

describe('plainWords', () => {
  it("names the provider and what to check for the provider's errors", () => {
    expect(plainWords({ error: 'access_denied', error_description: 'End-User aborted interaction' }, SIGN_IN)).toBe(
      'Sign-in was cancelled or refused at Uni login: “End-User aborted interaction”. Sign in again to continue.',
    );
    expect(plainWords({ error: 'invalid_client', error_description: null }, SIGN_IN)).toMatch(
      /^Uni login does not accept this dashboard as a client \(invalid_client\)\. An administrator must check OIDC_CLIENT_ID/,
    );
    expect(plainWords({ error: 'invalid_scope' }, SIGN_IN)).toMatch(/OIDC_SCOPES/);
    expect(plainWords({ error: 'invalid_target' }, SIGN_IN)).toMatch(/OIDC_AUDIENCE/);
    expect(plainWords({ error: 'server_error', error_description: 'boom' }, SIGN_IN)).toBe('Uni login refused the sign-in (server_error: “boom”).');
  });

  it('tells an unreachable provider from a stale callback', () => {
    expect(plainWords(new TypeError('Failed to fetch'), SIGN_IN)).toBe(
      'Uni login (https://idp.example/realms/uni) cannot be reached right now, so nobody can sign in. Try again in a moment; if it lasts, tell your administrator.',
    );
    expect(plainWords(new Error('No matching state found in storage'), SIGN_IN)).toMatch(/already used or belongs to another tab/);
  });
});
