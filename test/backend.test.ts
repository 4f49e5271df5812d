import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { initBackend, selectBackend } from '../lib/backend';

const installed = (...names: string[]) => (m: string) => names.includes(m);
const GPU = '@tensorflow/tfjs-node-gpu';
const NODE = '@tensorflow/tfjs-node';
const WASM = '@tensorflow/tfjs-backend-wasm';

describe('selectBackend', () => {
  it('prefers tfjs-node-gpu, then tfjs-node, then wasm, then cpu', () => {
    expect(selectBackend({}, installed(GPU, NODE, WASM))).toMatchObject({ name: 'tensorflow', module: GPU });
    expect(selectBackend({}, installed(NODE, WASM))).toMatchObject({ name: 'tensorflow', module: NODE });
    expect(selectBackend({}, installed(WASM))).toMatchObject({ name: 'wasm', module: WASM });
    expect(selectBackend({}, installed())).toMatchObject({ name: 'cpu', module: null });
  });

  it('honours OPDLAB_BACKEND over what is installed', () => {
    expect(selectBackend({ OPDLAB_BACKEND: 'cpu' }, installed(GPU, NODE, WASM))).toMatchObject({ name: 'cpu' });
    expect(selectBackend({ OPDLAB_BACKEND: 'wasm' }, installed(NODE, WASM))).toMatchObject({ name: 'wasm', module: WASM });
    expect(selectBackend({ OPDLAB_BACKEND: 'tensorflow' }, installed(NODE, WASM))).toMatchObject({ name: 'tensorflow', module: NODE });
    expect(selectBackend({ OPDLAB_BACKEND: ' wasm ' }, installed(WASM)).name).toBe('wasm');
  });

  it('rejects an override it cannot satisfy, naming the variable and the fix', () => {
    expect(() => selectBackend({ OPDLAB_BACKEND: 'tensorflow' }, installed(WASM))).toThrow(/OPDLAB_BACKEND=tensorflow.*npm install @tensorflow\/tfjs-node/);
    expect(() => selectBackend({ OPDLAB_BACKEND: 'webgpu' }, installed(WASM))).toThrow(/OPDLAB_BACKEND must be one of tensorflow, wasm, cpu; got 'webgpu'/);
    expect(() => selectBackend({ OPDLAB_BACKEND: 'wasm' }, installed())).toThrow(/wasm is not installed/);
  });

  it('treats an empty override as unset', () => {
    expect(selectBackend({ OPDLAB_BACKEND: '' }, installed(WASM)).name).toBe('wasm');
  });
});

describe('initBackend', () => {
  it('activates the selected backend once and reports it', async () => {
    const a = await initBackend({ quiet: true });
    const b = await initBackend({ quiet: true });
    expect(a).toBe(b);
    expect(tf.getBackend()).toBe(a.active);
    expect(a.active).toBe(selectBackend().name);
  });
});
