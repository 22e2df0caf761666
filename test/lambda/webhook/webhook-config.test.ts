import { CreateSecretCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { secondsFromEnv, signatureVersionsFromEnv } from '../../../lambda/webhook/index';
import { createSecretCheck, loadPathSecret } from '../../../lambda/webhook/path-secret';
import { motoClientConfig } from '../../support/moto';
import { TEST_PATH_SECRET } from './webhook-fixture';

describe('path secret from Secrets Manager (moto)', () => {
  const sm = new SecretsManagerClient(motoClientConfig());

  test('reads a generated-style secret', async () => {
    await sm.send(new CreateSecretCommand({ Name: 'webhook-config-good', SecretString: TEST_PATH_SECRET }));
    expect(await loadPathSecret(sm, 'webhook-config-good')).toBe(TEST_PATH_SECRET);
  });

  test('refuses a short or punctuated secret without quoting its value', async () => {
    await sm.send(new CreateSecretCommand({ Name: 'webhook-config-short', SecretString: 'hunter2/../x' }));
    const err = await loadPathSecret(sm, 'webhook-config-short').catch((e: Error) => e);
    expect(String(err)).toMatch(/webhook-config-short must be a string of 32 to 128 letters and digits \(it has 12 characters of another form\)/);
    expect(String(err)).not.toContain('hunter2');
  });

  test('a handler cannot be built around a weak secret', () => {
    expect(() => createSecretCheck('short')).toThrow(/32 to 128 letters and digits/);
  });
});

describe('configuration from the environment', () => {
  test('SIGNATURE_VERSIONS: unset means the default, listed values are checked', () => {
    expect(signatureVersionsFromEnv({})).toBeUndefined();
    expect(signatureVersionsFromEnv({ SIGNATURE_VERSIONS: '1,2' })).toEqual(['1', '2']);
    expect(() => signatureVersionsFromEnv({ SIGNATURE_VERSIONS: '2,constructor' })).toThrow(/SIGNATURE_VERSIONS \("2,constructor"\) contains "constructor"; allowed: 1, 2/);
  });

  test('windows in whole seconds, anything else named', () => {
    expect(secondsFromEnv({ CONFIRMATION_MAX_AGE_SECONDS: '3600' }, 'CONFIRMATION_MAX_AGE_SECONDS')).toBe(3_600_000);
    expect(secondsFromEnv({}, 'CONFIRMATION_MAX_AGE_SECONDS')).toBeUndefined();
    expect(() => secondsFromEnv({ NOTIFICATION_MAX_AGE_SECONDS: '1h' }, 'NOTIFICATION_MAX_AGE_SECONDS')).toThrow(/NOTIFICATION_MAX_AGE_SECONDS \("1h"\) must be a whole number of seconds/);
    expect(() => secondsFromEnv({ NOTIFICATION_MAX_AGE_SECONDS: '0' }, 'NOTIFICATION_MAX_AGE_SECONDS')).toThrow(/from 1 to 9999999/);
  });
});
