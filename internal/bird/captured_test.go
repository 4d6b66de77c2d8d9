package bird

// Replies captured from a real bird 2.0.12 on its control socket, byte for
// byte.
const (
	capGreeting = "0001 BIRD 2.0.12 ready.\n"

	capShowProtocols = "2002-Name       Proto      Table      State  Since         Info\n" +
		"1002-device1    Device     ---        up     17:28:23.462  \n" +
		" wg_vip4    Static     master4    down   17:28:23.462  \n" +
		" bgp_router BGP        ---        start  17:28:23.462  Idle          \n" +
		"0000 \n"

	// A name longer than the 10-character column shifts the row.
	capShowProtocolsLongName = "2002-Name       Proto      Table      State  Since         Info\n" +
		"1002-device1    Device     ---        up     17:37:48.613  \n" +
		" wg_vip4    Static     master4    down   17:37:48.613  \n" +
		" wg_up      Static     master4    up     17:37:48.613  \n" +
		" a_very_long_protocol_name_here Static     master4    up     17:37:48.613  \n" +
		"0000 \n"

	// timeformat protocol iso long;
	capShowProtocolsISOLong = "2002-Name       Proto      Table      State  Since         Info\n" +
		"1002-device1    Device     ---        up     2026-11-25 17:38:47  \n" +
		" wg_vip4    Static     master4    down   2026-11-25 17:38:47  \n" +
		" wg_up      Static     master4    up     2026-11-25 17:38:47  \n" +
		" a_very_long_protocol_name_here Static     master4    up     2026-11-25 17:38:47  \n" +
		"0000 \n"

	// timeformat protocol "%s"; shorter than the 12-character column.
	capShowProtocolsUnix = "2002-Name       Proto      Table      State  Since         Info\n" +
		"1002-device1    Device     ---        up     1795628336    \n" +
		" wg_vip4    Static     master4    down   1795628336    \n" +
		"0000 \n"

	// timeformat protocol "%d %b  %H:%M"; a double space inside Since.
	capShowProtocolsCustom = "2002-Name       Proto      Table      State  Since         Info\n" +
		"1002-device1    Device     ---        up     25 Nov  17:38  \n" +
		" wg_vip4    Static     master4    down   25 Nov  17:38  \n" +
		"0000 \n"

	capShowProtocolsAll = "2002-Name       Proto      Table      State  Since         Info\n" +
		"1002-wg_vip4    Static     master4    down   17:38:26.268  \n" +
		"1006-  Channel ipv4\n" +
		"     State:          DOWN\n" +
		"     Table:          master4\n" +
		"     Preference:     200\n" +
		"     Input filter:   ACCEPT\n" +
		"     Output filter:  REJECT\n" +
		" \n" +
		"0000 \n"

	capShowProtocolsNoMatch = "8003 No protocols match\n"

	capEnable         = "0011-wg_vip4: enabled\n0000 \n"
	capEnableAgain    = "0010-wg_vip4: already enabled\n0000 \n"
	capDisable        = "0009-wg_vip4: disabled\n0000 \n"
	capDisableAgain   = "0008-wg_vip4: already disabled\n0000 \n"
	capEnableNosuch   = "9001 syntax error, unexpected CF_SYM_UNDEFINED, expecting CF_SYM_KNOWN or TEXT or ALL\n"
	capEnableQuotedNo = "8003 No protocols match\n"
	capRestrict       = "0016 Access restricted\n"
	capAccessDenied   = "8007 Access denied\n"
	capEmptyLine      = "9001 syntax error, unexpected END\n"

	// `enable all`: a " " line continues the block of the previous code.
	capEnableAll = "0010-device1: already enabled\n" +
		"0011-wg_vip4: enabled\n" +
		"0010-wg_up: already enabled\n" +
		" a_very_long_protocol_name_here: already enabled\n" +
		"0000 \n"

	capShowStatus = "1000-BIRD 2.0.12\n" +
		"1011-Router ID is 10.0.0.9\n" +
		" Hostname is vm\n" +
		" Current server time is 2026-11-25 17:28:26.448\n" +
		" Last reboot on 2026-11-25 17:28:23.462\n" +
		" Last reconfiguration on 2026-11-25 17:28:23.462\n" +
		"0013 Daemon is up and running\n"

	capConfigureRestart = "0002-Reading configuration from bird.conf\n0004 Reconfiguration in progress\n"
	capConfigure        = "0002-Reading configuration from bird.conf\n0003 Reconfigured\n"

	// After `echo all`, asynchronous "+" lines follow replies.
	capDisableEcho = "0009-wg_up: disabled\n0000 \n+Disabling protocol wg_up\n"
)
