/**
 * The driver registry: name → driver. The daemon's composition root fills it.
 */
import { NotFoundError } from '../errors.js';
import type { Driver } from './types.js';

/** Drivers by name. */
export class DriverRegistry {
  #drivers = new Map<string, Driver>();

  /** Adds a driver; a second driver with the same name is a bug. */
  register(driver: Driver<any>): void {
    if (this.#drivers.has(driver.name))
      throw new Error(`Driver "${driver.name}" is registered twice`);
    this.#drivers.set(driver.name, driver as Driver);
  }

  /**
   * The driver with this name.
   * @throws NotFoundError DRIVER_UNKNOWN (dockerd answers 404 "plugin not found" too)
   */
  get(name: string): Driver {
    const d = this.#drivers.get(name);
    if (!d) {
      throw new NotFoundError(
        'DRIVER_UNKNOWN',
        `plugin "${name}" not found: network driver "${name}" is not available (cnm has ${this.names().join(', ')})`,
      );
    }
    return d;
  }

  names(): string[] {
    return [...this.#drivers.keys()];
  }

  all(): Driver[] {
    return [...this.#drivers.values()];
  }
}
