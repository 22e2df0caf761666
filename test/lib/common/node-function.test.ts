import { App, Stack } from 'aws-cdk-lib';
import { checkEsbuild, esbuildAvailable, handlerEntry } from '../../../lib/common/node-function';

describe('esbuild detection (bundling never falls back to Docker)', () => {
  test('finds the esbuild installed next to aws-cdk-lib', () => {
    expect(esbuildAvailable()).toBe(true);
  });

  test('reports esbuild missing when neither aws-cdk-lib can resolve it nor PATH has it', () => {
    const notFound = (id: string): string => {
      throw new Error(`Cannot find module '${id}'`);
    };
    expect(esbuildAvailable(notFound, () => false)).toBe(false);
    expect(esbuildAvailable(notFound, () => true)).toBe(true);
  });

  test('a missing esbuild fails synth with the construct path, the handler and the install command', () => {
    const stack = new Stack(new App(), 'Stack');
    expect(() => checkEsbuild(stack, 'Fn', handlerEntry('cleanup/index.ts'), false)).toThrow(
      '[Stack/Fn] cannot bundle cleanup/index.ts: esbuild is not installed where aws-cdk-lib looks for it (this library never bundles with Docker); run `npm install --save-dev esbuild` in the CDK app',
    );
  });
});
