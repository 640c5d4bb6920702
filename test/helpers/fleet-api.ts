/**
 * What the fleet tests (issue 17) ask of an appliance's API over plain HTTP: the appliance registry
 * (`GET /v1/appliances`), the fleet's machines (`GET /v1/fleet/machines`), and the wait for a stopped appliance to be
 * listed `gone`, timed from when it was stopped.
 */

/** One appliance as `GET /v1/appliances` lists it (src/http/api/appliance-routes.ts). */
export interface ListedAppliance {
  name: string
  site: string
  state: 'up' | 'gone'
  interface: string
  address: string
  heartbeat: string
  version: string
}

/** `GET /v1/appliances`. */
export interface ApplianceList {
  available: boolean
  appliances: ListedAppliance[]
}

/** One machine as `GET /v1/fleet/machines` lists it. */
export interface ListedFleetMachine {
  mac: string
  site?: string
  appliance?: string
  group?: string
  last_seen: string
}

/** `GET /v1/fleet/machines`. */
export interface FleetMachineList {
  available: boolean
  machines: ListedFleetMachine[]
  skipped: number
  /** Present when more records follow: pass as `after`. */
  next?: string
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** `GET <url>/v1/appliances`. */
export async function appliancesAt(url: string): Promise<ApplianceList> {
  return (await fetch(`${url}/v1/appliances`, { signal: AbortSignal.timeout(5000) })).json() as Promise<ApplianceList>
}

/** `GET <url>/v1/fleet/machines`. */
export async function fleetMachinesAt(url: string): Promise<FleetMachineList> {
  return (await fetch(`${url}/v1/fleet/machines`, { signal: AbortSignal.timeout(5000) })).json() as Promise<FleetMachineList>
}

/**
 * Polls `<url>/v1/appliances` every 200 ms until `name` is listed gone; its last record and the ms since `stoppedAt`
 * (Date.now() when it was stopped), or `record` undefined after `ms`.
 */
export async function untilGone(url: string, name: string, stoppedAt: number, ms = 20_000): Promise<{ record: ListedAppliance | undefined; after: number }> {
  while (Date.now() - stoppedAt < ms) {
    const record = (await appliancesAt(url)).appliances.find((x) => x.name === name && x.state === 'gone')
    if (record !== undefined) return { record, after: Date.now() - stoppedAt }
    await sleep(200)
  }
  return { record: undefined, after: Date.now() - stoppedAt }
}
