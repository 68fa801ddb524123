/** Throttle settings for tests, written as the config section is, through the real schema. */
import { z } from 'zod';
import { throttleSection } from '../../../src/config/throttle-schema.ts';
import { throttleSettings, type ThrottleSettings } from '../../../src/throttle/index.ts';

export function settingsOf(section: z.input<ReturnType<typeof throttleSection>>): ThrottleSettings {
  return throttleSettings(throttleSection().parse(section));
}
