/**
 * The task registry: `createTask('math', {...})` / `createTask('tool', {...})` with unknown options rejected.
 */
import { DEFAULT_MATH, MathTask, type MathConfig } from './math';
import { DEFAULT_TOOL, ToolTask, type ToolConfig } from './tool';
import type { Prompt, Task } from './types';

export * from './types';
export { DEFAULT_NOISE, type TeacherNoise } from './common';
export { DEFAULT_MATH, MathTask, type MathConfig, type MathPrompt } from './math';
export { DEFAULT_TOOL, ToolTask, type ToolConfig, type ToolPrompt } from './tool';

export interface TaskConfigs {
  math: MathConfig;
  tool: ToolConfig;
}
export type TaskName = keyof TaskConfigs;
export const TASK_NAMES: readonly TaskName[] = ['math', 'tool'];
export const TASK_DEFAULTS: { readonly [K in TaskName]: Readonly<TaskConfigs[K]> } = { math: DEFAULT_MATH, tool: DEFAULT_TOOL };

export function createTask<K extends TaskName>(name: K, config: Partial<TaskConfigs[K]> = {}): Task<Prompt> {
  switch (name) {
    case 'math':
      return new MathTask(config as Partial<MathConfig>) as unknown as Task<Prompt>;
    case 'tool':
      return new ToolTask(config as Partial<ToolConfig>) as unknown as Task<Prompt>;
    default:
      throw new Error(`createTask: name must be one of ${TASK_NAMES.join(', ')}, got '${String(name)}'`);
  }
}
